"""A Sieve script's filing travels sealed in the spool record; the drain files every copy once.

RFC 5228 §2.10.3 (one copy per mailbox, the flags of both), RFC 3894 (``:copy``: several folders,
one message), RFC 5232 §5 (``:flags`` on the stored message), RFC 5490 §3.2 (``:create``), RFC 5228
§4.1 (a ``fileinto`` that cannot file is a keep). The MX never sees the mailbox's folders: the drain,
which holds the key, decides.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sealmail.crypto import keys
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import MailStore
from sealmail.store.model import Filing, Placement
from sealmail.store.spool import open_message, seal_message

from mailgen import message


@pytest.fixture
def box(tmp_path):
    """A mailbox, its spool and a way to deliver into the spool and drain it, as the MX and a login do."""
    found, public = keys.new_secrets()
    store = MailStore(tmp_path)
    mailbox_id = "b" * 24
    store.create(mailbox_id, found.mailbox_key)

    class Box:
        def deliver(self, raw: bytes, folder: str | Filing = "INBOX") -> None:
            store.deliver(mailbox_id, public, raw, folder=folder)

        def open(self) -> Mailbox:
            return store.open_sync(mailbox_id, found.mailbox_key)

        def drain(self) -> int:
            mailbox = self.open()
            try:
                return mailbox.drain(store.spool(mailbox_id), found.private_key).drained
            finally:
                mailbox.close()

        def folder(self, name: str) -> list[tuple[bytes, tuple[str, ...], int]]:
            mailbox = self.open()
            try:
                return [(mailbox.raw(i.body_id), tuple(sorted(i.flags)), i.body_id) for i in mailbox.messages(name)]
            finally:
                mailbox.close()

        def folders(self) -> set[str]:
            mailbox = self.open()
            try:
                return {f.name for f in mailbox.list_folders() if not f.noselect}
            finally:
                mailbox.close()

    b = Box()
    b.store, b.id, b.secrets, b.public = store, mailbox_id, found, public
    yield b
    store.spool(mailbox_id).close()


def test_rfc3894_copies_in_several_folders_are_one_sealed_record_and_one_stored_body(box) -> None:
    box.open().close()  # the default folders exist
    mailbox = box.open()
    mailbox.create_folder("Lists")
    mailbox.close()
    box.deliver(message(1), Filing((Placement("INBOX"), Placement("Lists"), Placement("Archive"))))
    assert box.store.spool(box.id).count() == 1  # one record for the three copies
    assert box.drain() == 1
    stored = [box.folder(name) for name in ("INBOX", "Lists", "Archive")]
    assert all(len(copies) == 1 for copies in stored)
    assert {copies[0][0] for copies in stored} == {message(1)}
    assert len({copies[0][2] for copies in stored}) == 1  # the same body row: stored once


def test_rfc5232_flags_set_by_the_script_are_on_each_copy(box) -> None:
    box.deliver(message(2), Filing((Placement("INBOX", ("\\Seen", "$Work")), Placement("Archive", ("\\Flagged",)))))
    box.drain()
    assert box.folder("INBOX")[0][1] == ("$Work", "\\Seen")
    assert box.folder("Archive")[0][1] == ("\\Flagged",)


def test_rfc5490_create_makes_a_missing_folder_and_its_parents(box) -> None:
    box.deliver(message(3), Filing((Placement("Lists/sieve", (), create=True),)))
    box.drain()
    assert {"Lists", "Lists/sieve"} <= box.folders()
    assert [raw for raw, _, _ in box.folder("Lists/sieve")] == [message(3)]
    assert box.folder("INBOX") == []


def test_rfc5228_4_1_a_missing_folder_without_create_is_a_keep_in_the_fallback(box) -> None:
    """Not created: the copy goes where keep would have put it (Junk for spam), once."""
    box.deliver(message(4), Filing((Placement("Nowhere"),)))
    box.deliver(message(5), Filing((Placement("Nowhere", ("\\Seen",)),), fallback="Junk"))
    box.drain()
    assert "Nowhere" not in box.folders()
    assert [raw for raw, _, _ in box.folder("INBOX")] == [message(4)]
    assert [(raw, flags) for raw, flags, _ in box.folder("Junk")] == [(message(5), ("\\Seen",))]


def test_rfc5228_2_10_3_a_fallback_copy_and_a_copy_to_the_same_folder_are_stored_once(box) -> None:
    box.deliver(message(6), Filing((Placement("INBOX", ("$a",)), Placement("Nowhere", ("$b",)))))
    box.drain()
    (only,) = box.folder("INBOX")
    assert only[1] == ("$a", "$b")


def test_a_folder_name_no_mailbox_can_have_falls_back_and_is_never_created(box) -> None:
    box.deliver(message(7), Filing((Placement("bad%name", (), create=True), Placement("a//b", (), create=True))))
    box.drain()
    assert [raw for raw, _, _ in box.folder("INBOX")] == [message(7)]
    assert box.folders() == {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"}


def test_every_copy_is_delivered_exactly_once_across_drains_and_reopens(box) -> None:
    for i in range(3):
        box.deliver(message(10 + i), Filing((Placement("INBOX"), Placement("Copies", (), create=True))))
    assert box.drain() == 3
    assert box.drain() == 0  # a second login finds nothing new
    box.deliver(message(13), Filing((Placement("Copies"),)))
    assert box.drain() == 1
    assert len(box.folder("INBOX")) == 3
    assert len(box.folder("Copies")) == 4
    assert box.store.spool(box.id).count() == 0


def test_a_plain_delivery_stays_a_version_1_record(box) -> None:
    """Mail no script touched is sealed as before (an older drainer reads it)."""
    sealed = b"".join(seal_message(box.public, box.id, message(20), datetime.now(UTC), "Junk"))
    _, filing, raw = open_message(box.secrets.private_key, box.id, sealed)
    assert raw == message(20)
    assert filing == Filing((Placement("Junk"),))
    from sealmail.crypto.sealed import open_sealed

    payload = open_sealed(box.secrets.private_key, sealed, context=f"sealmail spool {box.id}".encode())
    assert payload[0] == 1


def test_a_filed_record_an_older_drainer_could_not_open_is_filed_by_the_next_drain(box, monkeypatch) -> None:
    """A rolling upgrade: an upgraded MX seals a filing (payload version 2) and a host still on the
    version before drains first. That drainer could not read the record and left it in the spool
    (``spool_failed``); the upgraded drainer files it, once, whoever gets there first."""
    from sealmail.crypto.sealed import SealError
    from sealmail.store import messages
    from sealmail.store.spool import FILED_VERSION

    box.deliver(message(30), Filing((Placement("INBOX"), Placement("Later", (), create=True))))
    box.deliver(message(31))
    newer = messages.open_message

    def older(private_key: bytes, mailbox_id: str, sealed: bytes):
        from sealmail.crypto.sealed import open_sealed

        payload = open_sealed(private_key, sealed, context=f"sealmail spool {mailbox_id}".encode())
        if payload[0] == FILED_VERSION:
            raise SealError(f"unknown spool payload version {FILED_VERSION}")  # what the version before said
        return newer(private_key, mailbox_id, sealed)

    monkeypatch.setattr(messages, "open_message", older)
    assert box.drain() == 1  # message 31; message 30 is left in the spool
    assert box.store.spool(box.id).count() == 1
    monkeypatch.setattr(messages, "open_message", newer)
    assert box.drain() == 1
    assert box.drain() == 0
    assert [raw for raw, _, _ in box.folder("INBOX")] == [message(31), message(30)]
    assert [raw for raw, _, _ in box.folder("Later")] == [message(30)]
    assert box.store.spool(box.id).count() == 0
