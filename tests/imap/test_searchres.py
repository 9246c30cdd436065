"""SEARCHRES (RFC 5182, part of IMAP4rev2: RFC 9051 §6.4.4.1 and §7.1) over real sockets.

``SEARCH RETURN (SAVE)`` keeps the messages found; ``$`` names them in later commands (FETCH, STORE,
COPY, MOVE, SEARCH, UID EXPUNGE and the UID forms). The exchanges below follow the RFC's examples
(§2.3 ... §2.5 and §3) on a folder of six messages.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import RawClient

# Six messages; 2, 4 and 5 are \Flagged; 6 is from "Smith".
FLAGGED = {2, 4, 5}


@pytest.fixture
def raw(imap) -> Iterator[RawClient]:
    client = imap.raw()
    client.login(imap.account())
    for n in range(1, 7):
        sender = "smith@example.org" if n == 6 else f"sender{n}@example.org"
        msg = f"From: {sender}\r\nSubject: m{n}\r\n\r\nbody {n}\r\n".encode()
        flags = b"(\\Flagged) " if n in FLAGGED else b""
        assert client.command(b"a APPEND INBOX %s{%d+}\r\n" % (flags, len(msg)) + msg)[-1].startswith(b"a OK")
    client.command("s SELECT INBOX")
    try:
        yield client
    finally:
        client.close()


def _run(raw: RawClient, command: str) -> list[bytes]:
    return raw.command("t " + command)


def _uids(lines: list[bytes]) -> list[int]:
    """The UIDs of ``* n FETCH (UID u ...)`` responses."""
    return [int(line.split(b"(UID ")[1].split()[0].rstrip(b")")) for line in lines if b" FETCH (UID " in line]


def test_capability_is_advertised(raw: RawClient) -> None:
    """RFC 5182 §4: SEARCHRES in the capability list."""
    assert b" SEARCHRES" in _run(raw, "CAPABILITY")[0]


def test_save_alone_answers_nothing_and_fetch_dollar_uses_it(raw: RawClient) -> None:
    """RFC 5182 §2.1 and example in §2.3: SAVE alone returns no ESEARCH; FETCH $ fetches what was found."""
    lines = _run(raw, 'SEARCH RETURN (SAVE) FLAGGED NOT FROM "Smith"')
    assert lines == [b"t OK SEARCH completed\r\n"]
    assert _uids(_run(raw, "FETCH $ (UID FLAGS)")) == [2, 4, 5]


# Each case: the SEARCH with SAVE, the untagged answer it gives, then what $ holds (UIDs).
SAVE_CASES = [
    ("SEARCH RETURN (SAVE) FLAGGED", [], [2, 4, 5]),
    ("SEARCH RETURN (SAVE ALL) FLAGGED", [b'* ESEARCH (TAG "t") ALL 2,4:5\r\n'], [2, 4, 5]),
    # §2.2: with MIN and/or MAX alone, only those are saved
    ("SEARCH RETURN (SAVE MIN) FLAGGED", [b'* ESEARCH (TAG "t") MIN 2\r\n'], [2]),
    ("SEARCH RETURN (MAX SAVE) FLAGGED", [b'* ESEARCH (TAG "t") MAX 5\r\n'], [5]),
    ("SEARCH RETURN (SAVE MIN MAX) FLAGGED", [b'* ESEARCH (TAG "t") MIN 2 MAX 5\r\n'], [2, 5]),
    # §2.2: with ALL or COUNT besides, the whole result is
    ("SEARCH RETURN (SAVE MIN COUNT) FLAGGED", [b'* ESEARCH (TAG "t") MIN 2 COUNT 3\r\n'], [2, 4, 5]),
    ("UID SEARCH RETURN (SAVE) UID 3:5", [], [3, 4, 5]),
    ("SEARCH RETURN (SAVE) SUBJECT nothing-like-this", [], []),  # §2.1: nothing found, $ is empty
]


@pytest.mark.parametrize(("search", "answer", "saved"), SAVE_CASES)
def test_what_save_keeps(raw: RawClient, search: str, answer: list[bytes], saved: list[int]) -> None:
    """RFC 5182 §2.1/§2.2: what SAVE stores, alone and combined with the ESEARCH options (RFC 4731)."""
    lines = _run(raw, search)
    assert lines[-1].startswith(b"t OK"), lines
    assert lines[:-1] == answer
    assert _uids(_run(raw, "UID FETCH $ (FLAGS)")) == saved


def test_dollar_in_every_command_that_takes_a_set(raw: RawClient) -> None:
    """RFC 5182 §2.1: $ stands for the saved messages wherever a sequence set may be, in the sequence-number
    and the UID forms alike (example 2 of §2.3: UID COPY $, UID STORE $, UID EXPUNGE $)."""
    assert _run(raw, "UID SEARCH RETURN (SAVE) FLAGGED UID 1:4")[-1].startswith(b"t OK")
    assert _run(raw, "SEARCH $") == [b"* SEARCH 2 4\r\n", b"t OK SEARCH completed\r\n"]
    assert _run(raw, "SEARCH UID $")[0] == b"* SEARCH 2 4\r\n"
    assert _run(raw, "SEARCH NOT $")[0] == b"* SEARCH 1 3 5 6\r\n"
    assert _run(raw, "SEARCH OR $ 6")[0] == b"* SEARCH 2 4 6\r\n"
    lines = _run(raw, "UID COPY $ Archive")
    assert lines[-1].startswith(b"t OK [COPYUID "), lines
    assert _run(raw, "UID STORE $ +FLAGS.SILENT (\\Deleted)") == [b"t OK STORE completed\r\n"]
    assert _run(raw, "UID EXPUNGE $") == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"t OK UID EXPUNGE completed\r\n"]
    # §2.1: expunged messages leave the saved result
    assert _run(raw, "FETCH $ (UID)") == [b"t OK FETCH completed\r\n"]
    assert _run(raw, "SEARCH RETURN (SAVE) ALL")[-1].startswith(b"t OK")
    lines = _run(raw, "MOVE $ Trash")
    assert b"* 4 EXPUNGE\r\n" in lines
    assert lines[-1] == b"t OK MOVE completed\r\n"
    assert _run(raw, 'STATUS "Trash" (MESSAGES)')[0] == b'* STATUS "Trash" (MESSAGES 4)\r\n'


def test_expunge_elsewhere_and_store_dollar(raw: RawClient, imap) -> None:
    """RFC 5182 §2.1: "When a message listed in the search result variable is EXPUNGEd, it is
    automatically removed from the list" — also when another session expunged it."""
    assert _run(raw, "SEARCH RETURN (SAVE) FLAGGED")[-1].startswith(b"t OK")
    other = imap.raw()
    other.login(imap.account())
    other.command("s SELECT INBOX")
    other.command("a STORE 4 +FLAGS.SILENT (\\Deleted)")
    other.command("b EXPUNGE")
    other.close()
    assert b"* 4 EXPUNGE\r\n" in _run(raw, "NOOP")
    lines = _run(raw, "STORE $ +FLAGS (\\Seen)")  # UIDs 2 and 5 are left, now numbers 2 and 4
    assert lines[:-1] == [
        b"* 2 FETCH (FLAGS (\\Seen \\Flagged \\Recent))\r\n",
        b"* 4 FETCH (FLAGS (\\Seen \\Flagged \\Recent))\r\n",
    ]


def test_failed_save_empties_and_other_searches_keep(raw: RawClient) -> None:
    """RFC 5182 §2.1: a SEARCH with SAVE that fails with NO empties $ (example 3: a charset the server
    lacks); a BAD SEARCH, or one without SAVE, leaves $ as it was."""
    assert _run(raw, "SEARCH RETURN (SAVE) FLAGGED")[-1].startswith(b"t OK")
    assert _run(raw, "SEARCH RETURN (SAVE) NOSUCHKEY")[-1].startswith(b"t BAD")
    assert _run(raw, "SEARCH SEEN")[-1].startswith(b"t OK")
    assert _run(raw, "SEARCH CHARSET KOI8-R ALL")[-1].startswith(b"t NO [BADCHARSET")
    assert _uids(_run(raw, "UID FETCH $ (UID)")) == [2, 4, 5]
    assert _run(raw, "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")[-1].startswith(b"t NO [BADCHARSET")
    assert _run(raw, "FETCH $ (UID)") == [b"t OK FETCH completed\r\n"]  # §2.1: empty, yet valid


def test_select_resets_and_dollar_is_never_mixed(raw: RawClient) -> None:
    """RFC 5182 §2.1: a successful SELECT/EXAMINE empties $; §3 (ABNF): "$" is a whole sequence set on its
    own, so "$,1" or "1:$" is BAD; $ outside the selected state is BAD like any FETCH; the session goes on."""
    assert _run(raw, "SEARCH RETURN (SAVE) ALL")[-1].startswith(b"t OK")
    _run(raw, "EXAMINE INBOX")
    assert _run(raw, "FETCH $ (UID)") == [b"t OK FETCH completed\r\n"]
    for bad in ("FETCH $,1 (UID)", "FETCH 1:$ (UID)", "SEARCH $$", "FETCH $1 (UID)"):
        assert _run(raw, bad)[-1].startswith(b"t BAD"), bad
    _run(raw, "UNSELECT")
    assert _run(raw, "FETCH $ (UID)")[-1].startswith(b"t BAD")
    assert _run(raw, "NOOP") == [b"t OK NOOP completed\r\n"]


def test_rev2_save_alone_still_answers_nothing(raw: RawClient) -> None:
    """RFC 9051 §6.4.4.1 (IMAP4rev2 includes SAVE): after ENABLE IMAP4rev2 every SEARCH answers with
    ESEARCH, except SAVE on its own, which answers nothing."""
    _run(raw, "ENABLE IMAP4rev2")
    assert _run(raw, "SEARCH RETURN (SAVE) FLAGGED") == [b"t OK SEARCH completed\r\n"]
    assert _run(raw, "SEARCH $")[0] == b'* ESEARCH (TAG "t") ALL 2,4:5\r\n'
