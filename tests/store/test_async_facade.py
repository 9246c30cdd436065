"""The asyncio face of a mailbox: explicit, typed methods that run on the mailbox's own thread.

Protocol code calls ``await handle.<method>(...)`` with the names and arguments of ``Mailbox``'s
synchronous API; nothing is forwarded by attribute lookup, so a misspelt call fails at once and
type checkers see every argument.
"""

from __future__ import annotations

import inspect
import threading

import pytest

from sealmail.crypto import keys
from sealmail.store import events as ev
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import AsyncMailbox, MailStore

# Used on the worker thread itself (inside ``run``) or owned by the handle: no async twin.
_NOT_ASYNC = {"close", "dav_transaction", "drain", "upkeep"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


def test_no_attribute_forwarding() -> None:
    assert "__getattr__" not in vars(AsyncMailbox)


def test_every_mailbox_method_has_an_async_twin_with_the_same_signature() -> None:
    sync = _public_methods(Mailbox)
    assert len(sync) > 50  # the whole API, not an empty class
    for name, signature in sync.items():
        if name in _NOT_ASYNC:
            continue
        twin = vars(AsyncMailbox).get(name)
        assert twin is not None, f"AsyncMailbox has no {name}"
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == signature, name
    # drain on the handle opens the spool with the session's own key
    assert inspect.iscoroutinefunction(AsyncMailbox.drain)


@pytest.fixture
async def handle(tmp_path):
    found, _ = keys.new_secrets()
    store = MailStore(tmp_path, ev.InProcessBus())
    store.create("d" * 24, found.mailbox_key)
    opened = await store.open("d" * 24, found)
    yield opened
    await opened.release()
    await store.close()


async def test_calls_run_on_the_mailbox_thread(handle, monkeypatch) -> None:
    """Each method is one hop onto the mailbox's worker thread, as ``run`` does it."""
    seen: list[int] = []
    original = handle.mailbox.folder

    def spy(name: str):
        seen.append(threading.get_ident())
        return original(name)

    monkeypatch.setattr(handle.mailbox, "folder", spy)
    folder = await handle.folder("inbox")
    assert folder.name == "INBOX"
    worker = await handle.run(threading.get_ident)
    assert seen == [worker]
    assert worker != threading.get_ident()


async def test_keyword_arguments_reach_the_mailbox(handle) -> None:
    """RFC 7162 §3.1.3 UNCHANGEDSINCE passes through the facade as a keyword argument."""
    appended = await handle.append("INBOX", b"Subject: x\r\n\r\nbody\r\n", ["\\Seen"])
    result = await handle.store_flags("INBOX", [appended.uid], "add", ["\\Flagged"], unchanged_since=0)
    assert result.conflicts == (appended.uid,)
    assert result.changed == ()
    infos = await handle.messages("INBOX", changed_since=0)
    assert [i.uid for i in infos] == [appended.uid]


async def test_unknown_names_are_not_forwarded(handle) -> None:
    with pytest.raises(AttributeError):
        handle.db  # noqa: B018 - the sync connection is not part of the async face
    with pytest.raises(AttributeError):
        handle.dav_transaction  # noqa: B018 - a transaction lives on the worker thread, inside run
