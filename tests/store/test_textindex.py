"""SEARCH's text index off the append path (store/textindex.py): an append queues its text, batches
index it, and a search never misses a message whose text still waits."""

from __future__ import annotations

import asyncio
import os

import pytest

from sealmail.crypto import keys
from sealmail.store import events as ev
from sealmail.store import textindex
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import MailStore
from sealmail.store.ordering import SortCriterion
from sealmail.store.search import And, HasFlag, Not, Or, Text
from sealmail.store.textindex import reads_text

from mailgen import message


def _counts(box: Mailbox) -> tuple[int, int]:
    """(messages whose text waits, texts indexed)."""
    mark = box.db.execute("SELECT value FROM meta WHERE key = ?", (textindex.MARK,)).fetchone()[0]
    waiting = box.db.execute(
        "SELECT count(*) FROM bodies b WHERE b.id > ? AND NOT EXISTS (SELECT 1 FROM body_text t WHERE t.rowid = b.id)",
        (mark,),
    ).fetchone()[0]
    indexed = box.db.execute("SELECT count(*) FROM body_text").fetchone()[0]
    return waiting, indexed


def test_an_append_queues_its_text_and_a_search_finds_it_at_once(mailbox: Mailbox) -> None:
    uid = mailbox.append("INBOX", b"Subject: hello\r\n\r\nthe marmalade recipe\r\n").uid
    assert _counts(mailbox) == (1, 0)  # the append writes nothing to the FTS5 table
    assert mailbox.search("INBOX", Text("body", "marmalade")) == [uid]
    assert _counts(mailbox) == (0, 1)
    assert mailbox.search("INBOX", Text("text", "marmalade")) == [uid]


def test_short_strings_and_sort_and_nested_keys_see_waiting_texts(mailbox: Mailbox) -> None:
    """Strings under three characters scan the indexed text with LIKE: they need it indexed too."""
    uid = mailbox.append("INBOX", b"Subject: hi\r\n\r\nok\r\n").uid
    assert mailbox.search("INBOX", Not(Not(Text("body", "ok")))) == [uid]
    mailbox.append("INBOX", b"Subject: two\r\n\r\nplum\r\n")
    key = Or(HasFlag("\\Flagged"), And((Text("subject", "two"),)))
    assert mailbox.sort("INBOX", key, (SortCriterion("arrival"),)) == [uid + 1]


def test_searches_without_text_leave_the_queue_alone(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", message(1))
    mailbox.search("INBOX", HasFlag("\\Seen"))
    mailbox.search("INBOX", Text("body", ""))  # an empty string matches everything without the index
    assert _counts(mailbox) == (1, 0)


def test_waiting_texts_survive_a_restart(tmp_path) -> None:
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    box = Mailbox("f" * 24, path, key)
    uid = box.append("INBOX", b"Subject: kept\r\n\r\nquince jelly\r\n").uid
    box.close()
    box = Mailbox("f" * 24, path, key)
    try:
        assert _counts(box) == (1, 0)
        assert box.search("INBOX", Text("body", "quince")) == [uid]
    finally:
        box.close()


def test_a_message_expunged_before_its_text_was_indexed(mailbox: Mailbox) -> None:
    mailbox.create_folder("Tmp")
    mailbox.append("Tmp", message(1))
    kept = mailbox.append("INBOX", message(2)).uid
    mailbox.delete_folder("Tmp")
    assert mailbox.search("INBOX", Text("text", "message")) == [kept]
    assert _counts(mailbox) == (0, 1)


def test_append_many_indexes_in_its_own_transaction(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", message(0))
    mailbox.append_many("INBOX", [(message(i), (), None) for i in range(1, 4)])
    assert _counts(mailbox) == (1, 3)
    assert mailbox.parts.text.catch_up() == 4  # the mark passes the three indexed already
    assert _counts(mailbox) == (0, 4)
    assert mailbox.search("INBOX", Text("body", "message 2")) == [3]
    mailbox.append_many("INBOX", [(message(i), (), None) for i in range(4, 6)])
    assert mailbox.parts.text.catch_up() == 0  # nothing waited: the mark passed them in their transaction


def test_batches_are_bounded_and_commit_one_by_one(mailbox: Mailbox) -> None:
    """Each batch is its own transaction, so other writers get the lock between them."""
    for i in range(5):
        mailbox.append("INBOX", message(i))
    assert mailbox.parts.text.index_pending(2) == 2
    assert _counts(mailbox) == (3, 2)
    before = mailbox.file.commits
    assert mailbox.parts.text.catch_up(batch=2) == 3
    assert mailbox.file.commits - before == 2
    assert _counts(mailbox) == (0, 5)


def test_a_drained_message_is_found_at_once(tmp_path) -> None:
    secrets, public = keys.new_secrets()
    store = MailStore(tmp_path)
    store.create("d" * 24, secrets.mailbox_key)
    store.deliver("d" * 24, public, b"Subject: spooled\r\n\r\ngooseberry fool\r\n")
    box = store.open_sync("d" * 24, secrets.mailbox_key)
    try:
        assert box.drain(store.spool("d" * 24), secrets.private_key).drained == 1
        assert _counts(box) == (1, 0)
        assert box.search("INBOX", Text("body", "gooseberry")) == [1]
    finally:
        box.close()
        store.close_spools()


@pytest.fixture
async def handle(tmp_path, monkeypatch):
    monkeypatch.setattr("sealmail.store.mailstore.UPKEEP_QUIET", 0.05)
    found, _ = keys.new_secrets()
    store = MailStore(tmp_path, ev.InProcessBus())
    store.create("d" * 24, found.mailbox_key)
    opened = await store.open("d" * 24, found)
    yield opened
    await opened.release()
    await store.close()


async def _until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_the_open_handle_indexes_and_checkpoints_when_quiet(handle) -> None:
    box = handle.mailbox
    for i in range(3):
        await handle.append("INBOX", message(i))
    assert box.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 1000  # commits do not checkpoint
    await _until(lambda: _counts(box) == (0, 3))
    await _until(lambda: box.file._checkpointed == box.file.commits)
    # the WAL's frames are in the database now: nothing left for a checkpoint to copy
    _busy, frames, copied = box.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames == copied


async def test_a_steady_stream_of_appends_is_indexed_without_a_pause(handle, monkeypatch) -> None:
    monkeypatch.setattr("sealmail.store.mailstore.UPKEEP_EVERY", 5)
    box = handle.mailbox
    for i in range(30):
        await handle.append("INBOX", message(i))
        await asyncio.sleep(0.01)  # never quiet for UPKEEP_QUIET (0.05 s)
        if _counts(box)[1]:
            break
    assert _counts(box)[1] > 0


def test_which_programs_read_the_text() -> None:
    assert reads_text(Or(HasFlag("\\Seen"), Not(Text("from", "x"))))
    assert not reads_text(And((HasFlag("\\Seen"), Text("body", ""))))
