"""A message is found by SEARCH the moment its APPEND (or its delivery) is answered.

The store indexes search text in batches after the append (store/textindex.py); these run over
real sockets, and with SEALMAIL_TEST_STORE=remote through the store component too.
"""

from __future__ import annotations

from .conftest import RawClient
from mailgen import message


def _append(raw: RawClient, folder: str, msg: bytes) -> None:
    lines = raw.command(b"a APPEND %s {%d+}\r\n" % (folder.encode(), len(msg)) + msg)
    assert lines[-1].startswith(b"a OK"), lines


def _search(raw: RawClient, criteria: str) -> list[int]:
    lines = raw.command(f"s UID SEARCH {criteria}")
    assert lines[-1].startswith(b"s OK"), lines
    found = [line for line in lines if line.startswith(b"* SEARCH")]
    return [int(n) for n in found[0].split()[2:]]


def test_append_then_search_finds_the_text_at_once(imap) -> None:
    raw = imap.raw()
    raw.login(imap.account())
    try:
        assert raw.command("c CREATE Drafts2")[-1].startswith(b"c OK")
        raw.command("x SELECT Drafts2")
        for n, word in enumerate(["rhubarb", "damson", "medlar"], start=1):
            _append(raw, "Drafts2", message(n, body=f"a {word} crumble\r\n"))
            assert _search(raw, f"BODY {word}") == [n]
            assert _search(raw, f"TEXT {word}") == [n]
            assert _search(raw, "TEXT crumble") == list(range(1, n + 1))
        assert _search(raw, "OR SUBJECT zz BODY ol") == []  # a short string reads the indexed text too
        assert _search(raw, "BODY rhu") == [1]
    finally:
        raw.close()

    imap.restart()  # whatever waited for the index when the server stopped is found after it
    raw = imap.raw()
    raw.login(imap.account())
    try:
        raw.command("x SELECT Drafts2")
        _append(raw, "Drafts2", message(4, body="a quince crumble\r\n"))
        assert _search(raw, "TEXT crumble") == [1, 2, 3, 4]
    finally:
        raw.close()


def test_delivered_mail_is_found_at_once(imap) -> None:
    raw = imap.raw()
    raw.login(imap.account())
    try:
        raw.command("x SELECT INBOX")
        imap.deliver(message(7, body="sloe gin\r\n"))
        for _ in range(100):  # the drain follows the delivery's event
            lines = raw.command("n NOOP")
            if any(line.endswith(b" EXISTS\r\n") for line in lines):
                break
        else:
            raise AssertionError("the delivery never arrived")
        assert len(_search(raw, "BODY sloe")) == 1
    finally:
        raw.close()
