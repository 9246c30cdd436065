"""Messages read lately stay decrypted in memory: bounded, per open file, gone with what they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealmail.store.bodycache import PROCESS_BODIES, BodyCache
from sealmail.store.mailbox import Mailbox

from mailgen import message


def owner_of(box: Mailbox) -> int:
    return box.parts.sections._owner


def test_a_second_read_comes_from_memory(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    info = mailbox.messages("INBOX", [mailbox.append("INBOX", message(1)).uid])[0]
    assert mailbox.raw(info.body_id) == message(1)
    assert PROCESS_BODIES.get(owner_of(mailbox), info.body_id) == message(1)
    monkeypatch.setattr(mailbox.file, "read", None)  # no database read left to make
    assert mailbox.raw(info.body_id) == message(1)
    assert mailbox.raws([info.body_id]) == {info.body_id: message(1)}


def test_an_expunged_message_leaves_memory_with_its_body(mailbox: Mailbox) -> None:
    first, second = (mailbox.append("INBOX", message(n)).uid for n in (1, 2))
    infos = mailbox.messages("INBOX", [first, second])
    mailbox.raws([i.body_id for i in infos])
    assert sorted(PROCESS_BODIES.held(owner_of(mailbox))) == sorted(i.body_id for i in infos)
    mailbox.copy("INBOX", [second], "Archive")
    mailbox.store_flags("INBOX", [first, second], "add", ["\\Deleted"])
    mailbox.expunge("INBOX")
    # the first body is gone; the second lives on in Archive and stays
    assert PROCESS_BODIES.held(owner_of(mailbox)) == [infos[1].body_id]
    mailbox.remove("Archive", mailbox.uids("Archive"))
    assert PROCESS_BODIES.held(owner_of(mailbox)) == []


def test_a_closed_mailbox_leaves_nothing_behind(tmp_path: Path) -> None:
    box = Mailbox("e" * 24, tmp_path / "box.sqlite", os.urandom(32))
    info = box.messages("INBOX", [box.append("INBOX", message(1)).uid])[0]
    box.raw(info.body_id)
    owner = owner_of(box)
    assert PROCESS_BODIES.held(owner) == [info.body_id]
    box.close()
    assert PROCESS_BODIES.held(owner) == []


def test_the_budget_holds_and_the_least_recent_goes_first() -> None:
    cache = BodyCache(budget=100, largest=60)
    cache.put(1, 1, b"a" * 40)
    cache.put(2, 1, b"b" * 40)  # another mailbox, the same id: another entry
    assert cache.get(1, 1) == b"a" * 40  # now the most recent
    cache.put(1, 2, b"c" * 40)
    assert cache.size == 80
    assert cache.get(2, 1) is None
    cache.put(1, 3, b"d" * 61)  # larger than any entry may be: not kept
    assert cache.get(1, 3) is None
    assert cache.size == 80
    cache.forget(1)
    assert cache.size == 0
    assert cache.held(1) == []
