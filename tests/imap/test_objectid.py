"""OBJECTID (RFC 8474) over real sockets: MAILBOXID, EMAILID, THREADID and their SEARCH keys.

The exchanges follow the RFC's examples (§4.1-§4.3, §5.1, §5.2, §6). Ids are random per mailbox file,
so they say nothing of the address, the folder name or the message.
"""

from __future__ import annotations

import re

from .conftest import ADDRESS, ASCII_ADDRESS, RawClient
from mailgen import message

OBJECTID = rb"[A-Za-z][A-Za-z0-9_-]{0,254}"  # RFC 8474 §7 objectid (and §8: starting with a letter)


def _ok(raw: RawClient, line: str) -> list[bytes]:
    lines = raw.command("t " + line)
    assert lines[-1].startswith(b"t OK"), lines
    return lines


def _mailboxid(line: bytes) -> bytes:
    found = re.search(rb"MAILBOXID \((" + OBJECTID + rb")\)", line)
    assert found is not None, line
    return found.group(1)


def _emailids(lines: list[bytes]) -> list[bytes]:
    return [m.group(1) for line in lines if (m := re.search(rb"EMAILID \((" + OBJECTID + rb")\)", line))]


def _append(raw: RawClient, msg: bytes, folder: str = "INBOX") -> None:
    assert raw.command(b"a APPEND %s {%d+}\r\n" % (folder.encode(), len(msg)) + msg)[-1].startswith(b"a OK")


def test_capability(raw: RawClient) -> None:
    """RFC 8474 §3."""
    assert b" OBJECTID" in _ok(raw, "CAPABILITY")[0]


def test_mailboxid_on_create_select_status_and_across_rename(raw: RawClient) -> None:
    """RFC 8474 §4.1 (CREATE's tagged OK), §4.2 (SELECT/EXAMINE untagged OK), §4.3 (STATUS MAILBOXID, also
    through LIST-STATUS); §4: the id survives RENAME, and a mailbox made again after DELETE gets a new one."""
    created = _mailboxid(_ok(raw, "CREATE foo")[-1])
    assert [line for line in _ok(raw, "SELECT foo") if b"MAILBOXID" in line] == [
        b"* OK [MAILBOXID (%s)] Ok\r\n" % created
    ]
    assert _ok(raw, "STATUS foo (MAILBOXID)")[0] == b'* STATUS "foo" (MAILBOXID (%s))\r\n' % created
    _ok(raw, "RENAME foo bar")
    assert _mailboxid(_ok(raw, "STATUS bar (MAILBOXID MESSAGES)")[0]) == created
    assert _mailboxid(_ok(raw, 'LIST "" bar RETURN (STATUS (MAILBOXID))')[1]) == created
    assert [_mailboxid(line) for line in _ok(raw, "EXAMINE bar") if b"MAILBOXID" in line] == [created]
    inbox = _mailboxid(_ok(raw, "STATUS INBOX (MAILBOXID)")[0])
    assert inbox != created
    _ok(raw, "UNSELECT")
    _ok(raw, "DELETE bar")
    again = _mailboxid(_ok(raw, "CREATE bar")[-1])
    assert again not in (created, inbox)


def test_mailboxids_are_stable_across_sessions(imap, raw: RawClient) -> None:
    """RFC 8474 §4: the id is the mailbox's for its life, whichever session asks."""
    first = _mailboxid(_ok(raw, "STATUS Sent (MAILBOXID)")[0])
    other = imap.raw()
    other.login(imap.account())
    try:
        assert _mailboxid(other.command("s STATUS Sent (MAILBOXID)")[0]) == first
    finally:
        other.close()


def test_emailid_kept_by_copy_and_move_threadid_nil(raw: RawClient) -> None:
    """RFC 8474 §5.1 (its example: FETCH EMAILID, COPY, the copy has the same EMAILID; also MOVE) and §5.2:
    without threading THREADID is NIL."""
    _append(raw, message(1))
    _append(raw, message(2))
    _ok(raw, "CREATE foo")
    _ok(raw, "SELECT INBOX")
    ids = _emailids(_ok(raw, "FETCH 1:2 (EMAILID)"))
    assert len(ids) == 2
    assert ids[0] != ids[1]
    _ok(raw, "COPY 1 foo")
    _ok(raw, "MOVE 2 foo")
    _ok(raw, "SELECT foo")
    assert _emailids(_ok(raw, "FETCH 1:* (EMAILID)")) == ids
    lines = _ok(raw, "UID FETCH 1:* (THREADID EMAILID FLAGS)")
    assert lines[0] == b"* 1 FETCH (UID 1 THREADID NIL EMAILID (%s) FLAGS (\\Recent))\r\n" % ids[0]


SEARCH_CASES = [
    ("EMAILID {first}", [1]),
    ("EMAILID {second}", [2]),
    ("OR EMAILID {first} EMAILID {second}", [1, 2]),
    ("NOT EMAILID {first}", [2]),
    ("EMAILID Mnothing", []),
    ("THREADID {first}", []),  # §5.2: without THREADID support it matches nothing
    ("THREADID T1234", []),
]


def test_search_emailid_and_threadid(raw: RawClient) -> None:
    """RFC 8474 §6: SEARCH EMAILID / THREADID objectid."""
    _append(raw, message(1))
    _append(raw, message(2))
    _ok(raw, "SELECT INBOX")
    first, second = _emailids(_ok(raw, "FETCH 1:2 (EMAILID)"))
    for criteria, want in SEARCH_CASES:
        text = criteria.format(first=first.decode(), second=second.decode())
        lines = _ok(raw, f"SEARCH {text}")
        assert lines[0] == b"* SEARCH" + b"".join(b" %d" % n for n in want) + b"\r\n", text
    for bad in ("SEARCH EMAILID", 'SEARCH EMAILID "a b"', "SEARCH EMAILID a.b", "SEARCH THREADID ()"):
        assert raw.command("b " + bad)[-1].startswith(b"b BAD"), bad
    assert raw.command("n NOOP")[-1] == b"n OK NOOP completed\r\n"


def test_ids_reveal_nothing(imap) -> None:
    """RFC 8474 §9 (Security Considerations): ids should not leak information. The same message in two
    accounts gets unrelated EMAILIDs (not a digest of its content), and no id carries the address or the
    folder name."""
    seen: dict[str, bytes] = {}
    for address in (ADDRESS, ASCII_ADDRESS):
        client = imap.raw()
        client.login(imap.account(address))
        try:
            _append(client, message(7, subject="Private subject"))
            client.command("s SELECT INBOX")
            (seen[address],) = _emailids(client.command("f FETCH 1 (EMAILID)"))
            mailbox = _mailboxid(client.command("m STATUS INBOX (MAILBOXID)")[0])
        finally:
            client.close()
        for secret in (b"Private", b"subject", address.split("@")[0].encode(), b"INBOX", b"example"):
            assert secret.lower() not in seen[address].lower()
            assert secret.lower() not in mailbox.lower()
    assert seen[ADDRESS] != seen[ASCII_ADDRESS]
