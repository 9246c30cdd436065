"""The store's POP3 view: wire sizes recorded at append, the maildrop listing, removal by UID."""

from __future__ import annotations

from sealmail.store.mailbox import Mailbox
from sealmail.store.wireform import ascii_size, crlf_size

from mailgen import message


def test_maildrop_lists_crlf_sizes_in_uid_order(mailbox: Mailbox) -> None:
    """RFC 1939 §11: sizes count line endings as CRLF; the stored bytes stay as they came."""
    crlf = b"Subject: ascii\r\n\r\nbody\r\n"
    bare = b"Subject: bare\n\nline one\nline two"
    eight_bit = "Subject: café\r\n\r\nbody\r\n".encode()
    uids = [mailbox.append("INBOX", raw).uid for raw in (crlf, bare, eight_bit)]
    drop = mailbox.maildrop("INBOX")
    assert drop.uidvalidity == mailbox.folder("INBOX").uidvalidity
    assert [m.uid for m in drop.messages] == uids
    assert [m.crlf_size for m in drop.messages] == [len(crlf), len(bare) + 3 + 2, len(eight_bit)]
    assert [m.utf8_header for m in drop.messages] == [False, False, True]
    # RFC 6858: the ASCII-header size differs only where the header has 8-bit octets.
    assert [m.ascii_size for m in drop.messages] == [len(crlf), len(bare) + 3 + 2, ascii_size(eight_bit)]
    assert ascii_size(eight_bit) > len(eight_bit)
    assert mailbox.raw(drop.messages[1].body_id) == bare


def test_messages_from_before_the_migration_get_their_sizes(mailbox: Mailbox) -> None:
    raw = b"Subject: \xc3\xa9t\xc3\xa9\n\nold\n"
    mailbox.append("INBOX", raw)
    mailbox.db.execute("UPDATE messages SET crlf_size = NULL, ascii_size = NULL, utf8_header = NULL")
    (entry,) = mailbox.maildrop().messages
    assert (entry.crlf_size, entry.ascii_size, entry.utf8_header) == (crlf_size(raw), ascii_size(raw), True)
    assert mailbox.db.execute("SELECT crlf_size FROM messages").fetchone()[0] == crlf_size(raw)


def test_copies_and_moves_keep_the_sizes(mailbox: Mailbox) -> None:
    raw = b"Subject: moved\n\nbare LF\n"
    uid = mailbox.append("INBOX", raw).uid
    mailbox.copy("INBOX", [uid], "Archive")
    mailbox.move("INBOX", [uid], "Trash")
    for folder in ("Archive", "Trash"):
        assert [(m.crlf_size, m.ascii_size) for m in mailbox.maildrop(folder).messages] == [(crlf_size(raw),) * 2]


def test_remove_takes_exactly_the_given_uids(mailbox: Mailbox) -> None:
    """POP3 UPDATE (RFC 1939 §6) removes what DELE marked, whatever the flags; gone UIDs are skipped."""
    uids = [mailbox.append("INBOX", message(n)).uid for n in range(1, 5)]
    mailbox.store_flags("INBOX", [uids[3]], "add", ["\\Deleted"])
    assert mailbox.remove("INBOX", [uids[0], uids[1], 999]) == [uids[0], uids[1]]
    assert mailbox.uids("INBOX") == [uids[2], uids[3]]  # \Deleted alone does not remove a message
    assert mailbox.remove("INBOX", [uids[0]]) == []
    assert mailbox.expunged_since("INBOX", 0) == [uids[0], uids[1]]
