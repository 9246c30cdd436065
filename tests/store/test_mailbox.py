"""Mailbox operations the protocols rely on (IMAP semantics cited by RFC section)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest

from sealmail.store.errors import FolderExists, FolderNotFound, InvalidFolderName, MailboxLocked, QuotaExceeded
from sealmail.store.mailbox import DEFAULT_FOLDERS, Mailbox, normalize_folder_name

from mailgen import message


def test_a_new_mailbox_has_the_default_special_use_folders(mailbox: Mailbox) -> None:
    """RFC 6154: Drafts, Sent, Junk, Trash and Archive carry their special-use attributes."""
    folders = {f.name: f.special_use for f in mailbox.list_folders()}
    assert folders == dict(DEFAULT_FOLDERS)


def test_inbox_is_case_insensitive() -> None:
    """RFC 9051 §5.1: INBOX in any case is the INBOX; other names are case-sensitive."""
    assert normalize_folder_name("inbox") == "INBOX"
    assert normalize_folder_name("Inbox/Sub") == "INBOX/Sub"
    assert normalize_folder_name("Work") != normalize_folder_name("work")


@pytest.mark.parametrize("name", ["", "/lead", "trail/", "a//b", "wild*", "pct%", "ctl\x07"])
def test_bad_folder_names(name: str) -> None:
    with pytest.raises(InvalidFolderName):
        normalize_folder_name(name)


def test_create_makes_missing_parents(mailbox: Mailbox) -> None:
    """RFC 9051 §6.3.4: CREATE creates superior hierarchical names as needed."""
    mailbox.create_folder("Projects/2026/Q4")
    names = {f.name for f in mailbox.list_folders()}
    assert {"Projects", "Projects/2026", "Projects/2026/Q4"} <= names
    with pytest.raises(FolderExists):
        mailbox.create_folder("Projects")


def test_uidvalidity_never_repeats_for_a_recreated_name(mailbox: Mailbox) -> None:
    """RFC 9051 §2.3.1.1: a new mailbox with the same name gets a new UIDVALIDITY."""
    first = mailbox.create_folder("Tmp").uidvalidity
    mailbox.delete_folder("Tmp")
    second = mailbox.create_folder("Tmp").uidvalidity
    assert second > first


def test_delete_with_children_keeps_a_noselect_placeholder(mailbox: Mailbox) -> None:
    """RFC 9051 §6.3.5: messages go, the name stays as \\Noselect while it has inferiors."""
    mailbox.create_folder("A/B")
    mailbox.append("A", message(1))
    mailbox.delete_folder("A")
    folder = {f.name: f for f in mailbox.list_folders()}["A"]
    assert folder.noselect
    with pytest.raises(FolderNotFound):
        mailbox.uids("A")
    mailbox.delete_folder("A/B")  # the last child goes: so does the placeholder
    assert "A" not in {f.name for f in mailbox.list_folders()}


def test_inbox_cannot_be_deleted(mailbox: Mailbox) -> None:
    with pytest.raises(InvalidFolderName):
        mailbox.delete_folder("inbox")


def test_rename_moves_children(mailbox: Mailbox) -> None:
    """RFC 9051 §6.3.6: inferior names are renamed too, and messages stay with their folder."""
    mailbox.create_folder("Old/Child")
    uid = mailbox.append("Old/Child", message(1)).uid
    validity = mailbox.folder("Old/Child").uidvalidity
    mailbox.rename_folder("Old", "New/Place")
    names = {f.name for f in mailbox.list_folders()}
    assert {"New", "New/Place", "New/Place/Child"} <= names
    assert "Old" not in names
    assert mailbox.uids("New/Place/Child") == [uid]
    assert mailbox.folder("New/Place/Child").uidvalidity == validity
    with pytest.raises(InvalidFolderName):
        mailbox.rename_folder("New", "New/Place/Inside")


def test_renaming_inbox_moves_its_messages(mailbox: Mailbox) -> None:
    """RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name; INBOX stays, empty."""
    for n in range(3):
        mailbox.append("INBOX", message(n))
    mailbox.rename_folder("INBOX", "Old Inbox")
    assert mailbox.uids("INBOX") == []
    assert mailbox.uids("Old Inbox") == [1, 2, 3]


def test_append_assigns_increasing_uids_and_modseqs(mailbox: Mailbox) -> None:
    """RFC 9051 §2.3.1.1 strictly ascending UIDs; RFC 7162 §3.1 a new MODSEQ per change."""
    results = [mailbox.append("INBOX", message(n)) for n in range(3)]
    assert [r.uid for r in results] == [1, 2, 3]
    assert results[0].modseq < results[1].modseq < results[2].modseq
    status = mailbox.status("INBOX")
    assert (status.messages, status.uidnext, status.highestmodseq) == (3, 4, results[2].modseq)


def test_append_keeps_flags_date_and_bytes(mailbox: Mailbox) -> None:
    raw = message(7)
    when = datetime(2020, 2, 29, 12, 0, 1, tzinfo=UTC)
    uid = mailbox.append("INBOX", raw, ["\\Seen", "\\flagged", "$Label1", "\\Recent", "\\Bogus"], when).uid
    (info,) = mailbox.messages("INBOX", [uid])
    assert info.flags == {"\\Seen", "\\Flagged", "$Label1"}
    assert info.internal_date == when
    assert info.size == len(raw)
    assert mailbox.raw(info.body_id) == raw
    assert mailbox.header(info.body_id) == raw[: raw.index(b"\r\n\r\n") + 4]


def test_malformed_mime_is_stored_byte_for_byte(mailbox: Mailbox) -> None:
    nasty = [
        b"",
        b"no header separator at all",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nbroken\n",
        b"\x00\xff\xfe binary \r\n\r\n\x80\x81",
        b"Subject: =?bogus?Q?=ZZ?=\r\nDate: not a date\r\n\r\nbody",
    ]
    for raw in nasty:
        info = mailbox.messages("INBOX", [mailbox.append("INBOX", raw).uid])[0]
        assert mailbox.raw(info.body_id) == raw


def test_keywords_compare_case_insensitively_and_keep_their_first_spelling(mailbox: Mailbox) -> None:
    """RFC 9051 §2.3.2: flags are case-insensitive."""
    uid = mailbox.append("INBOX", message(1), ["$Important"]).uid
    mailbox.store_flags("INBOX", [uid], "add", ["$IMPORTANT", "Work"])
    assert mailbox.messages("INBOX", [uid])[0].flags == {"$Important", "Work"}
    assert mailbox.keywords() == ["$Important", "Work"]
    mailbox.store_flags("INBOX", [uid], "remove", ["$important"])
    assert mailbox.messages("INBOX", [uid])[0].flags == {"Work"}


def test_store_modes_and_modseq(mailbox: Mailbox) -> None:
    """RFC 9051 §6.4.6 (FLAGS, +FLAGS, -FLAGS) and RFC 7162 §3.1: only changed messages get a new MODSEQ."""
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(3)]
    first = mailbox.store_flags("INBOX", uids, "add", ["\\Seen"])
    assert [i.uid for i in first.changed] == uids
    assert len({i.modseq for i in first.changed}) == 1
    again = mailbox.store_flags("INBOX", uids, "add", ["\\Seen"])
    assert again.changed == ()
    assert [i.uid for i in again.unchanged] == uids
    replaced = mailbox.store_flags("INBOX", [uids[0]], "replace", ["\\Answered"])
    assert replaced.changed[0].flags == {"\\Answered"}
    assert replaced.changed[0].modseq > first.changed[0].modseq
    assert mailbox.status("INBOX").highestmodseq == replaced.changed[0].modseq
    assert [i.uid for i in mailbox.messages("INBOX", changed_since=first.changed[0].modseq)] == [uids[0]]


def test_unchangedsince_refuses_messages_modified_meanwhile(mailbox: Mailbox) -> None:
    """RFC 7162 §3.1.3: messages whose MODSEQ exceeds UNCHANGEDSINCE are not changed and are reported."""
    a = mailbox.append("INBOX", message(1))
    b = mailbox.append("INBOX", message(2))
    result = mailbox.store_flags("INBOX", [a.uid, b.uid], "add", ["\\Flagged"], unchanged_since=a.modseq)
    assert [i.uid for i in result.changed] == [a.uid]
    assert result.conflicts == (b.uid,)


def test_copy_returns_uidplus_pairs_and_shares_the_body(mailbox: Mailbox) -> None:
    """RFC 4315 §3: COPYUID source and destination UIDs correspond in order."""
    uids = [mailbox.append("INBOX", message(n), ["\\Seen"]).uid for n in range(3)]
    mailbox.append("Archive", message(99))
    result = mailbox.copy("INBOX", [uids[2], uids[0]], "Archive")
    assert result.uidvalidity == mailbox.folder("Archive").uidvalidity
    assert result.pairs == ((uids[0], 2), (uids[2], 3))
    copied = mailbox.messages("Archive", [2, 3])
    assert all(i.flags == {"\\Seen"} for i in copied)
    originals = {i.uid: i.body_id for i in mailbox.messages("INBOX")}
    assert [c.body_id for c in copied] == [originals[uids[0]], originals[uids[2]]]


def test_move_is_copy_plus_expunge(mailbox: Mailbox) -> None:
    """RFC 6851 §3.3."""
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(4)]
    result = mailbox.move("INBOX", uids[1:3], "Trash")
    assert [p[0] for p in result.pairs] == uids[1:3]
    assert mailbox.uids("INBOX") == [uids[0], uids[3]]
    assert mailbox.uids("Trash") == [1, 2]
    assert mailbox.expunged_since("INBOX", 0) == uids[1:3]


def test_expunge_removes_only_deleted_and_respects_a_uid_set(mailbox: Mailbox) -> None:
    """RFC 9051 §6.4.3 EXPUNGE and RFC 4315 §2.1 UID EXPUNGE."""
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(4)]
    mailbox.store_flags("INBOX", uids[:3], "add", ["\\Deleted"])
    assert mailbox.expunge("INBOX", [uids[0], uids[3]]) == [uids[0]]
    assert mailbox.expunge("INBOX") == uids[1:3]
    assert mailbox.uids("INBOX") == [uids[3]]


def test_recent_is_claimed_by_the_first_session(mailbox: Mailbox) -> None:
    """RFC 3501 §2.3.2: \\Recent is seen by one session only."""
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(2)]
    assert mailbox.status("INBOX").recent == 2
    assert mailbox.claim_recent("INBOX") == set(uids)
    assert mailbox.claim_recent("INBOX") == set()
    assert mailbox.status("INBOX").recent == 0


def test_status_counts(mailbox: Mailbox) -> None:
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(5)]
    mailbox.store_flags("INBOX", uids[:2], "add", ["\\Seen"])
    mailbox.store_flags("INBOX", uids[4:], "add", ["\\Deleted"])
    status = mailbox.status("INBOX")
    assert (status.messages, status.unseen, status.deleted) == (5, 3, 1)
    assert status.size == sum(len(message(n)) for n in range(5))


def test_quota_is_enforced_on_append_and_copy(tmp_path) -> None:
    """Over quota: QuotaExceeded (SMTP 552 5.2.2, IMAP NO [OVERQUOTA])."""
    raw = message(1)
    box = Mailbox("q" * 24, tmp_path / "q.sqlite", os.urandom(32), quota=len(raw) * 2)
    try:
        box.append("INBOX", raw)
        uid = box.append("INBOX", message(2)).uid
        with pytest.raises(QuotaExceeded):
            box.append("INBOX", message(3))
        with pytest.raises(QuotaExceeded):
            box.copy("INBOX", [uid], "Archive")
        box.move("INBOX", [uid], "Archive")  # moving does not add usage
        assert box.usage() == len(raw) + len(message(2))
    finally:
        box.close()


def test_identical_attachments_are_stored_once_and_bodies_come_back_byte_identical(mailbox: Mailbox) -> None:
    attachment = os.urandom(30_000).hex().encode()

    def with_attachment(n: int) -> bytes:
        return (
            (
                f"Subject: report {n}\r\nMIME-Version: 1.0\r\n"
                'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
                "--b\r\nContent-Type: text/plain\r\n\r\n"
                f"see attached {n}\r\n"
                '--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="r.bin"\r\n\r\n'
            ).encode()
            + attachment
            + b"\r\n--b--\r\n"
        )

    raws = [with_attachment(n) for n in range(3)]
    infos = [mailbox.messages("INBOX", [mailbox.append("INBOX", r).uid])[0] for r in raws]
    assert mailbox.db.execute("SELECT count(*), sum(refcount) FROM attachments").fetchone() == (1, 3)
    for raw, info in zip(raws, infos, strict=True):
        assert mailbox.raw(info.body_id) == raw
        assert mailbox.section(info.body_id, "2") == attachment
    plain = mailbox.messages("INBOX", [mailbox.append("INBOX", message(9)).uid])[0]
    wanted = [plain.body_id] + [i.body_id for i in infos] + [10**9]  # one id that is no body
    assert mailbox.raws(wanted) == {plain.body_id: message(9)} | {
        i.body_id: raw for i, raw in zip(infos, raws, strict=True)
    }
    mailbox.store_flags("INBOX", [i.uid for i in infos] + [plain.uid], "add", ["\\Deleted"])
    mailbox.expunge("INBOX")
    assert mailbox.db.execute("SELECT count(*) FROM attachments").fetchone() == (0,)
    assert mailbox.db.execute("SELECT count(*) FROM bodies").fetchone() == (0,)


def test_bodies_are_compressed(mailbox: Mailbox) -> None:
    raw = message(1, body="All work and no play makes a dull mailbox.\r\n" * 2000)
    mailbox.append("INBOX", raw)
    (stored,) = mailbox.db.execute("SELECT length(skeleton) FROM body_content").fetchone()
    assert stored < len(raw) / 10


def test_duplicate_delivery_shares_one_body(mailbox: Mailbox) -> None:
    raw = message(1)
    mailbox.append("INBOX", raw)
    mailbox.append("INBOX", raw)
    assert mailbox.db.execute("SELECT count(*), refcount FROM bodies").fetchone() == (1, 2)
    assert hashlib.sha256(raw).digest() == mailbox.db.execute("SELECT digest FROM bodies").fetchone()[0]


def test_wrong_key_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "box.sqlite"
    Mailbox("k" * 24, path, os.urandom(32)).close()
    with pytest.raises(MailboxLocked):
        Mailbox("k" * 24, path, os.urandom(32))


def test_deleting_a_folder_releases_its_bodies(mailbox: Mailbox) -> None:
    mailbox.create_folder("Tmp")
    mailbox.append("Tmp", message(1))
    mailbox.delete_folder("Tmp")
    assert mailbox.db.execute("SELECT count(*) FROM bodies").fetchone() == (0,)
    assert mailbox.db.execute("SELECT count(*) FROM body_text").fetchone() == (0,)


def test_subscriptions(mailbox: Mailbox) -> None:
    mailbox.create_folder("News")
    mailbox.set_subscribed("News", False)
    assert not mailbox.folder("News").subscribed
    mailbox.set_subscribed("Gone", False)  # RFC 9051 §6.3.10: unsubscribing a missing name is fine
    with pytest.raises(FolderNotFound):
        mailbox.set_subscribed("Gone", True)


def test_subscription_outlives_its_folder(mailbox: Mailbox) -> None:
    """RFC 9051 §6.3.9: the server does not drop a subscribed name when its mailbox goes; the name is
    subscribed again when a folder is made under it, and UNSUBSCRIBE removes it either way."""
    mailbox.create_folder("Lists/rust")  # new folders are subscribed by the store (IMAP CREATE undoes that)
    mailbox.delete_folder("Lists/rust")
    assert "Lists/rust" in mailbox.subscriptions()
    mailbox.create_folder("Lists/rust")
    assert mailbox.folder("Lists/rust").subscribed
    assert mailbox.subscriptions().count("Lists/rust") == 1
    mailbox.delete_folder("Lists/rust")
    mailbox.set_subscribed("Lists/rust", False)
    assert "Lists/rust" not in mailbox.subscriptions()


def test_object_ids_follow_rename_copy_and_move(mailbox: Mailbox) -> None:
    """RFC 8474 §4: RENAME keeps a MAILBOXID, a folder made again gets a new one; §5.1: COPY and MOVE keep
    the EMAILID (the copies share the body)."""
    made = mailbox.create_folder("Projects")
    mailbox.rename_folder("Projects", "Work")
    assert mailbox.folder("Work").object_id == made.object_id
    assert mailbox.status("Work").object_id == made.object_id
    mailbox.delete_folder("Work")
    assert mailbox.create_folder("Work").object_id != made.object_id
    mailbox.append("INBOX", message(1))
    mailbox.append("INBOX", message(2))
    mailbox.copy("INBOX", [1], "Work")
    mailbox.move("INBOX", [2], "Work")
    inbox = mailbox.email_ids(i.body_id for i in mailbox.messages("INBOX"))
    work = mailbox.email_ids(i.body_id for i in mailbox.messages("Work"))
    assert len(work) == 2
    assert set(inbox.values()) < set(work.values())


def test_append_many_is_one_transaction(mailbox: Mailbox) -> None:
    results = mailbox.append_many("INBOX", [(message(n), ["\\Seen"], None) for n in range(5)])
    assert [r.uid for r in results] == [1, 2, 3, 4, 5]
    with pytest.raises(FolderNotFound):
        mailbox.append_many("Nope", [(message(9), (), None)])
    assert mailbox.uids("INBOX") == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "body",
    [
        __import__("base64").encodebytes(os.urandom(9000)).replace(b"\n", b"\r\n"),  # the usual: decoded, exact
        __import__("base64").encodebytes(os.urandom(9000)).replace(b"\n", b"\r\n")[:-2],  # no final CRLF
        __import__("base64").b64encode(os.urandom(9000)),  # one long line: kept as it came
        b"not base64 at all! " * 500,
    ],
)
def test_attachment_packing_gives_back_the_exact_octets(mailbox: Mailbox, body: bytes) -> None:
    raw = (
        b"Subject: packing\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n--b--\r\n"
    )
    info = mailbox.messages("INBOX", [mailbox.append("INBOX", raw).uid])[0]
    assert mailbox.db.execute("SELECT count(*) FROM attachments").fetchone() == (1,)
    assert mailbox.raw(info.body_id) == raw
