"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): PARTIAL results, and search contexts kept up to
date with ADDTO/REMOVEFROM until CANCELUPDATE, over real sockets."""

from __future__ import annotations

import pytest

from .conftest import ASCII_ADDRESS, selected_after_appends
from mailgen import message


@pytest.fixture
def box(imap):
    with selected_after_appends(imap, [(message(n, subject=f"Note {6 - n}"), None) for n in range(1, 6)]) as raw:
        yield raw


def test_context_capabilities(box) -> None:
    """RFC 5267 §4: CONTEXT=SEARCH and CONTEXT=SORT are advertised."""
    caps = box.command("c CAPABILITY")[0].decode().split()
    assert "CONTEXT=SEARCH" in caps
    assert "CONTEXT=SORT" in caps


PARTIALS = [
    ("SEARCH RETURN (PARTIAL 2:3) ALL", "PARTIAL (2:3 2:3)"),
    ("SEARCH RETURN (PARTIAL 3:2) ALL", "PARTIAL (2:3 2:3)"),  # either way round
    ("SEARCH RETURN (PARTIAL 4:9) 1:2,4:5", "PARTIAL (4:9 5)"),  # positions in the result, not numbers
    ("SEARCH RETURN (PARTIAL 6:6) ALL", "PARTIAL (6:6 NIL)"),
    ("SEARCH RETURN (COUNT PARTIAL 1:2) ALL", "COUNT 5 PARTIAL (1:2 1:2)"),
    ("UID SEARCH RETURN (PARTIAL 1:1) ALL", "UID PARTIAL (1:1 1)"),
    ("SORT RETURN (PARTIAL 1:2) (SUBJECT) UTF-8 ALL", "PARTIAL (1:2 5,4)"),
]


@pytest.mark.parametrize(("command", "expected"), PARTIALS)
def test_partial_results(box, command: str, expected: str) -> None:
    """RFC 5267 §4.4: PARTIAL low:high answers that window of the (sorted) result."""
    assert box.command(f"p {command}")[0] == f'* ESEARCH (TAG "p") {expected}\r\n'.encode()


def test_search_context_follows_own_and_other_sessions_changes(imap, box) -> None:
    """RFC 5267 §4.2-4.3: after RETURN (UPDATE) the client hears ADDTO/REMOVEFROM (position 0 for an
    unsorted result) for its own STOREs, another session's APPEND (after EXISTS), and EXPUNGE
    (REMOVEFROM first, while the sequence numbers still name the messages)."""
    assert box.command("t1 SEARCH RETURN (UPDATE) SEEN") == [b'* ESEARCH (TAG "t1")\r\n', b"t1 OK SEARCH completed\r\n"]
    lines = box.command("a STORE 1,2,4 +FLAGS.SILENT (\\Seen)")
    assert lines == [b'* ESEARCH (TAG "t1") ADDTO (0 1:2,4)\r\n', b"a OK STORE completed\r\n"]
    lines = box.command("b STORE 2 -FLAGS.SILENT (\\Seen)")
    assert lines == [b'* ESEARCH (TAG "t1") REMOVEFROM (0 2)\r\n', b"b OK STORE completed\r\n"]
    other = imap.client(ASCII_ADDRESS)
    assert other.append("INBOX", "(\\Seen)", None, message(9))[0] == "OK"
    other.logout()
    lines = box.command("c NOOP")
    assert lines == [
        b"* 6 EXISTS\r\n",
        b"* 6 RECENT\r\n",  # the five this session took at SELECT, and the new one
        b'* ESEARCH (TAG "t1") ADDTO (0 6)\r\n',
        b"c OK NOOP completed\r\n",
    ]
    box.command("d STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines = box.command("e EXPUNGE")
    assert lines == [b'* ESEARCH (TAG "t1") REMOVEFROM (0 1)\r\n', b"* 1 EXPUNGE\r\n", b"e OK EXPUNGE completed\r\n"]
    assert box.command('f CANCELUPDATE "t1"') == [b"f OK CANCELUPDATE completed\r\n"]
    assert box.command("g STORE 1 +FLAGS.SILENT (\\Seen)") == [b"g OK STORE completed\r\n"]


def test_uid_context_with_all_and_idle(imap, box) -> None:
    """RFC 5267 §4.3: a UID context speaks UIDs; its updates reach a client in IDLE (RFC 2177) too."""
    box.command("x STORE 1 +FLAGS.SILENT (\\Deleted)")
    box.command("y EXPUNGE")
    lines = box.command("t2 UID SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT ZZZ")
    assert lines == [b'* ESEARCH (TAG "t2") UID\r\n', b"t2 OK SEARCH completed\r\n"]
    box.send("i IDLE\r\n")
    assert box.response() == b"+ idling\r\n"
    other = imap.client(ASCII_ADDRESS)
    other.select("INBOX")
    assert other.store("2,3", "+FLAGS", "(\\Seen)")[0] == "OK"  # UIDs 3 and 4
    seen = [box.response() for _ in range(3)]  # the two FLAGS changes, then the context's update
    assert seen[2] == b'* ESEARCH (TAG "t2") UID ADDTO (0 3:4)\r\n', seen
    other.logout()
    box.send("DONE\r\n")
    assert box.until("i")[-1] == b"i OK IDLE terminated\r\n"


def test_sort_context_positions(box) -> None:
    """RFC 5267 §4.3 with CONTEXT=SORT: positions are places in the sorted result."""
    # Subjects "Note 5".."Note 1" on messages 1..5: by subject the order is 5 4 3 2 1
    lines = box.command("t3 SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN")
    assert lines[0] == b'* ESEARCH (TAG "t3") ALL 5,4,3,2,1\r\n'
    lines = box.command("a STORE 2,4 +FLAGS.SILENT (\\Seen)")
    assert lines[0] == b'* ESEARCH (TAG "t3") REMOVEFROM (4 2 2 4)\r\n'
    lines = box.command("b STORE 4 -FLAGS.SILENT (\\Seen)")
    assert lines[0] == b'* ESEARCH (TAG "t3") ADDTO (2 4)\r\n'


def test_cancelupdate_and_contexts_end_with_the_selection(box) -> None:
    """RFC 5267 §4.2: CANCELUPDATE names live contexts (NO otherwise; BAD without a tag); selecting
    again ends them all."""
    box.command("t4 SEARCH RETURN (UPDATE) SEEN")
    assert box.command('a CANCELUPDATE "nope"')[-1].startswith(b"a NO")
    assert box.command("b CANCELUPDATE")[-1].startswith(b"b BAD")
    assert box.command("s SELECT INBOX")[-1].startswith(b"s OK")
    assert box.command("c STORE 1 +FLAGS.SILENT (\\Seen)") == [b"c OK STORE completed\r\n"]
    assert box.command('d CANCELUPDATE "t4"')[-1].startswith(b"d NO")


def test_too_many_contexts_get_noupdate(box) -> None:
    """RFC 5267 §4.2: a server may decline to keep a context and says so with NOUPDATE."""
    for i in range(10):
        assert box.command(f"k{i} SEARCH RETURN (UPDATE) SEEN")[-1].startswith(f"k{i} OK".encode())
    lines = box.command("k10 SEARCH RETURN (UPDATE) SEEN")
    assert b'* NO [NOUPDATE "k10"]' in lines[1]
    assert lines[-1] == b"k10 OK SEARCH completed\r\n"
