"""QRESYNC (RFC 7162 §3.2) over real sockets: RFC 7162's examples as scripted exchanges checked line by
line, with the mailbox built so that every UID, sequence number and MOD-SEQUENCE is known.

A fresh INBOX has HIGHESTMODSEQ 1 and every change takes the next MOD-SEQUENCE, so the n-th message
appended gets UID n and MODSEQ n + 1; the comments say which change took which value.
"""

from __future__ import annotations

import re
import time

import pytest

from sealmail.imap import parser as p

from .conftest import RawClient
from mailgen import message

PERMANENT = "\\Seen \\Answered \\Flagged \\Deleted \\Draft"


def _fill(imap, count: int) -> None:
    client = imap.client()
    for i in range(1, count + 1):
        typ, data = client.append("INBOX", None, None, message(i))
        assert typ == "OK", data
    client.logout()


def _session(imap, *, qresync: bool = True) -> RawClient:
    raw = imap.raw()
    raw.login(imap.account())
    if qresync:
        assert raw.command("e1 ENABLE QRESYNC") == [b"* ENABLED QRESYNC\r\n", b"e1 OK ENABLE completed\r\n"]
    return raw


def _assert_bad(raw: RawClient, line: str) -> None:
    """Nothing but a tagged BAD."""
    lines = raw.command(line)
    assert [x.split(b" ", 2)[:2] for x in lines] == [[line.split(maxsplit=1)[0].encode(), b"BAD"]], lines


def _uidvalidity(raw: RawClient, folder: str = "INBOX") -> int:
    line = raw.command(f'v STATUS "{folder}" (UIDVALIDITY)')[0]
    match = re.search(rb"UIDVALIDITY (\d+)", line)
    assert match, line
    return int(match.group(1))


def _script(raw: RawClient, steps: list[tuple[str, list[str]]]) -> None:
    """Each command's whole answer, line by line, exactly as given. SELECT's MAILBOXID line (RFC 8474
    §4.1, random per folder and later than RFC 7162's examples) is checked for its form and left out."""
    for command, expected in steps:
        got = [line.decode() for line in raw.command(command)]
        ids = [line for line in got if line.startswith("* OK [MAILBOXID (")]
        assert all(re.fullmatch(r"\* OK \[MAILBOXID \([A-Za-z0-9_-]{1,255}\)\] .*\r\n", line) for line in ids), ids
        got = [line for line in got if line not in ids]
        assert got == [line + "\r\n" for line in expected], command


def _select_lines(
    uidvalidity: int,
    *,
    exists: int,
    recent: int,
    unseen: int | None,
    uidnext: int,
    modseq: int,
    keywords: str = "",
    readonly: bool = False,
) -> list[str]:
    """What SELECT (or EXAMINE, ``readonly``) answers before any QRESYNC response (RFC 3501 §6.3.1)."""
    flags = PERMANENT + (" " + keywords if keywords else "")
    permanent = "" if readonly else f"{flags} \\*"
    lines = [
        f"* FLAGS ({flags})",
        f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted",
        f"* {exists} EXISTS",
        f"* {recent} RECENT",
    ]
    if unseen is not None:
        lines.append(f"* OK [UNSEEN {unseen}] First unseen")
    return [
        *lines,
        f"* OK [UIDVALIDITY {uidvalidity}] UIDs valid",
        f"* OK [UIDNEXT {uidnext}] Predicted next UID",
        f"* OK [HIGHESTMODSEQ {modseq}] Highest",
    ]


def _changes_by_another_session(imap) -> None:
    """Twelve messages (UID n, MODSEQ n+1), then another session changes flags, expunges and appends."""
    _fill(imap, 12)
    other = _session(imap, qresync=False)
    other.command("b1 SELECT INBOX")  # takes \Recent of all twelve
    other.command("b2 UID STORE 3 +FLAGS.SILENT (\\Seen)")  # MODSEQ 14
    other.command("b3 UID STORE 5 +FLAGS.SILENT (\\Answered)")  # 15
    other.command("b4 UID STORE 4,6,9 +FLAGS.SILENT (\\Deleted)")  # 16
    other.command("b5 EXPUNGE")  # 17: UIDs 4, 6 and 9 go
    other.command("b6 UID STORE 11 +FLAGS.SILENT ($Forwarded)")  # 18
    msg = message(13)
    other.command(b"b7 APPEND INBOX {%d+}\r\n" % len(msg) + msg)  # UID 13, MODSEQ 19; \Recent to this session
    other.close()


# ---- the grammar (RFC 7162 §7) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "uidvalidity", "modseq", "known", "match"),
    [
        # §3.2.5.1's example, and the same without the optional parts
        (
            "A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
            67890007,
            20050715194045000,
            "41,43:211,214:541",
            None,
        ),
        ("A03 SELECT INBOX (QRESYNC (67890007 90060115194045000))", 67890007, 90060115194045000, None, None),
        # §3.2.5.2's example: message sequence match data
        (
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
            "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
            67890007,
            90060115194045000,
            "1:29997",
            (
                "5000,7500,9000,9990:9999",
                "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997",
            ),
        ),
        ("C EXAMINE INBOX (CONDSTORE QRESYNC (1 1 (1 5)))", 1, 1, None, ("1", "5")),
    ],
)
def test_qresync_select_parameter_grammar(line, uidvalidity, modseq, known, match) -> None:
    """RFC 7162 §7: select-param =/ "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")", the examples of §3.2.5.1 and §3.2.5.2 included."""
    command = p.parse_command(line.encode() + b"\r\n")
    assert isinstance(command, p.Select)
    assert command.qresync is not None
    assert (command.qresync.uidvalidity, command.qresync.modseq) == (uidvalidity, modseq)
    assert (str(command.qresync.known_uids) if command.qresync.known_uids else None) == known
    seq_match = command.qresync.seq_match
    assert (tuple(str(s) for s in seq_match) if seq_match else None) == match


@pytest.mark.parametrize(
    "line",
    [
        "a SELECT INBOX (QRESYNC (67890007))",  # the mod-sequence is required
        "a SELECT INBOX (QRESYNC (0 1))",  # uidvalidity = nz-number
        "a SELECT INBOX (QRESYNC (5 0))",  # mod-sequence-value >= 1
        "a SELECT INBOX (QRESYNC (5 1 1:*))",  # known-uids: "*" is not allowed
        "a SELECT INBOX (QRESYNC (5 1 1:4 (1:2 3)))",  # two sequence numbers, one UID
        "a SELECT INBOX (QRESYNC (5 1 (1:* 3)))",
        "a SELECT INBOX (QRESYNC 5 1)",
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",  # §3.2.6: only in UID FETCH
        "a UID FETCH 1:* (FLAGS) (VANISHED)",  # §3.2.6: only with CHANGEDSINCE
        "a UID FETCH 1:* (FLAGS) (VANISHED 5)",
    ],
)
def test_qresync_grammar_errors(line) -> None:
    """RFC 7162 §7 and §3.2.6: malformed QRESYNC parameters and VANISHED modifiers are syntax errors (BAD)."""
    with pytest.raises(p.ParseError) as err:
        p.parse_command(line.encode() + b"\r\n")
    assert err.value.tag == "a"


def test_uid_fetch_vanished_modifier_grammar() -> None:
    """RFC 7162 §3.2.6's example: UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)."""
    command = p.parse_command(b"A254 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert isinstance(command, p.Fetch)
    assert (command.uid, command.changed_since, command.vanished) == (True, 12345, True)
    other = p.parse_command(b"A255 UID FETCH 300:500 (FLAGS) (VANISHED CHANGEDSINCE 12345)\r\n")
    assert isinstance(other, p.Fetch)
    assert (other.vanished, other.changed_since) == (True, 12345)


# ---- capability and ENABLE -----------------------------------------------------------------------
def test_qresync_is_advertised_after_login_and_enable_implies_condstore(imap) -> None:
    """RFC 7162 §3.2.2 (QRESYNC and CONDSTORE advertised), §3.2.3 (ENABLE QRESYNC also enables
    CONDSTORE: MODSEQ in every FETCH of flags from then on)."""
    _fill(imap, 1)
    raw = imap.raw()
    assert b"QRESYNC" not in raw.greeting
    raw.login(imap.account())
    caps = raw.command("c CAPABILITY")[0].split()
    assert b"QRESYNC" in caps
    assert b"CONDSTORE" in caps
    _script(raw, [("a01 ENABLE QRESYNC", ["* ENABLED QRESYNC", "a01 OK ENABLE completed"])])
    raw.command("s SELECT INBOX")
    # §3.2.4: with QRESYNC every FETCH a STORE causes carries the UID as well as the MODSEQ
    _script(
        raw,
        [
            (
                "a03 STORE 1 +FLAGS (\\Flagged)",
                ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (3))", "a03 OK STORE completed"],
            )
        ],
    )
    raw.close()


def test_enable_qresync_while_selected(imap) -> None:
    """RFC 7162 §3.1 and §3.2.3: enabled with a mailbox selected, HIGHESTMODSEQ comes at once and
    expunges are VANISHED from then on (§3.2.10.2)."""
    _fill(imap, 2)
    raw = _session(imap, qresync=False)
    raw.command("s SELECT INBOX")
    _script(
        raw,
        [
            ("a ENABLE QRESYNC", ["* OK [HIGHESTMODSEQ 3] Highest", "* ENABLED QRESYNC", "a OK ENABLE completed"]),
            ("b STORE 2 +FLAGS.SILENT (\\Deleted)", ["* 2 FETCH (UID 2 MODSEQ (4))", "b OK STORE completed"]),
            ("c EXPUNGE", ["* VANISHED 2", "c OK [HIGHESTMODSEQ 5] EXPUNGE completed"]),
        ],
    )
    raw.close()


def test_qresync_parameters_without_enable_are_bad(imap) -> None:
    """RFC 7162 §3.2.3/§3.2.5/§3.2.6: the QRESYNC SELECT parameter and the VANISHED UID FETCH modifier
    without ENABLE QRESYNC get a tagged BAD; the mailbox selected before stays selected and the session
    goes on serving."""
    _fill(imap, 1)
    raw = _session(imap, qresync=False)
    uidvalidity = _uidvalidity(raw)
    raw.command("s SELECT INBOX")
    _assert_bad(raw, f"a SELECT Sent (QRESYNC ({uidvalidity} 1))")
    _assert_bad(raw, "b UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert raw.command("c CHECK") == [b"c OK CHECK completed\r\n"]  # INBOX is still selected
    assert b"* ENABLED QRESYNC\r\n" in raw.command("d ENABLE QRESYNC")
    for bad_line in (
        "e FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",  # §3.2.6: not in a plain FETCH
        "f UID FETCH 1:* (FLAGS) (VANISHED)",  # §3.2.6: only with CHANGEDSINCE
        f"g SELECT INBOX (QRESYNC ({uidvalidity} 1 1:*))",  # §7: no "*" in known-uids
        f"h SELECT INBOX (QRESYNC ({uidvalidity} 1 1:2 (1:2 1)))",  # §3.2.5.2: the sets do not pair up
    ):
        _assert_bad(raw, bad_line)
    assert raw.command("i CHECK") == [b"i OK CHECK completed\r\n"]
    raw.close()


# ---- RFC 7162's examples, in order on one mailbox -------------------------------------------------
def test_rfc7162_examples_as_a_scripted_exchange(imap) -> None:
    """RFC 7162 §3.2.11 (CLOSED), §3.2.5.1 (SELECT with QRESYNC: VANISHED (EARLIER) for the known UIDs
    expunged since the MOD-SEQUENCE, then FETCH UID FLAGS MODSEQ of what changed), §3.2.6 (UID FETCH
    CHANGEDSINCE VANISHED, VANISHED (EARLIER) first), §3.2.7 and §3.2.9 (EXPUNGE and UID EXPUNGE answer
    VANISHED and the new HIGHESTMODSEQ in the tagged OK), RFC 6851 §4.3 (MOVE answers VANISHED), §3.2.8
    (CLOSE: neither), and a later SELECT that learns every expunge since its last MOD-SEQUENCE."""
    _changes_by_another_session(imap)
    raw = _session(imap)
    uv = _uidvalidity(raw)
    archive = _uidvalidity(raw, "Archive")
    raw.command("s SELECT Sent")
    # INBOX now: UIDs 1 2 3 5 7 8 10 11 12 13 (sequence numbers 1 to 10)
    _script(
        raw,
        [
            (
                f"A03 SELECT INBOX (QRESYNC ({uv} 13 1:3,5:12))",
                [
                    "* OK [CLOSED] Previous mailbox closed",
                    *_select_lines(uv, exists=10, recent=0, unseen=1, uidnext=14, modseq=19, keywords="$Forwarded"),
                    "* VANISHED (EARLIER) 6,9",  # 4 was not among the known UIDs
                    "* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (14))",
                    "* 4 FETCH (UID 5 FLAGS (\\Answered) MODSEQ (15))",
                    "* 8 FETCH (UID 11 FLAGS ($Forwarded) MODSEQ (18))",  # UID 13 is new: not a known UID
                    "A03 OK [READ-WRITE] SELECT completed",
                ],
            ),
            (
                "A254 UID FETCH 1:12 (FLAGS) (CHANGEDSINCE 13 VANISHED)",
                [
                    "* VANISHED (EARLIER) 4,6,9",
                    "* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (14))",
                    "* 4 FETCH (UID 5 FLAGS (\\Answered) MODSEQ (15))",
                    "* 8 FETCH (UID 11 FLAGS ($Forwarded) MODSEQ (18))",
                    "A254 OK FETCH completed",
                ],
            ),
            (
                "A255 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 17 VANISHED)",
                [  # the expunge took 17: not after it
                    "* 8 FETCH (UID 11 FLAGS ($Forwarded) MODSEQ (18))",
                    "* 10 FETCH (UID 13 FLAGS () MODSEQ (19))",
                    "A255 OK FETCH completed",
                ],
            ),
            (
                "A256 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 16 VANISHED)",
                [
                    "* VANISHED (EARLIER) 4,6,9",
                    "* 8 FETCH (UID 11 FLAGS ($Forwarded) MODSEQ (18))",
                    "* 10 FETCH (UID 13 FLAGS () MODSEQ (19))",
                    "A256 OK FETCH completed",
                ],
            ),
            (
                "A201 STORE 1:2 +FLAGS.SILENT (\\Deleted)",
                [
                    "* 1 FETCH (UID 1 MODSEQ (20))",
                    "* 2 FETCH (UID 2 MODSEQ (20))",
                    "A201 OK STORE completed",
                ],
            ),
            ("A202 EXPUNGE", ["* VANISHED 1:2", "A202 OK [HIGHESTMODSEQ 21] EXPUNGE completed"]),
            # UIDs 3 5 7 8 10 11 12 13 now
            (
                "A203 UID STORE 5,7 +FLAGS.SILENT (\\Deleted)",
                [
                    "* 2 FETCH (UID 5 MODSEQ (22))",
                    "* 3 FETCH (UID 7 MODSEQ (22))",
                    "A203 OK STORE completed",
                ],
            ),
            ("A204 UID EXPUNGE 7", ["* VANISHED 7", "A204 OK [HIGHESTMODSEQ 23] UID EXPUNGE completed"]),
            (
                "A205 UID MOVE 5 Archive",
                [
                    f"* OK [COPYUID {archive} 5 1] Moved",
                    "* VANISHED 5",
                    "A205 OK MOVE completed",
                ],
            ),
            ("A206 STORE 1 +FLAGS.SILENT (\\Deleted)", ["* 1 FETCH (UID 3 MODSEQ (25))", "A206 OK STORE completed"]),
            ("A207 CLOSE", ["A207 OK CLOSE completed"]),  # §3.2.8: no VANISHED, no HIGHESTMODSEQ
            # Back with what the client knew after A03: every expunge since MODSEQ 19, and nothing else changed
            (
                f"A208 SELECT INBOX (QRESYNC ({uv} 19))",
                [
                    *_select_lines(uv, exists=5, recent=0, unseen=1, uidnext=14, modseq=26, keywords="$Forwarded"),
                    "* VANISHED (EARLIER) 1:3,5,7",
                    "A208 OK [READ-WRITE] SELECT completed",
                ],
            ),
        ],
    )
    raw.close()


def test_select_qresync_with_another_uidvalidity_is_a_plain_select(imap) -> None:
    """RFC 7162 §3.2.5.1: a UIDVALIDITY that does not match makes the server ignore the rest."""
    _changes_by_another_session(imap)
    raw = _session(imap)
    uv = _uidvalidity(raw)
    _script(
        raw,
        [
            (
                f"a EXAMINE INBOX (QRESYNC ({uv - 1} 13 1:12))",
                [
                    *_select_lines(
                        uv, exists=10, recent=0, unseen=1, uidnext=14, modseq=19, keywords="$Forwarded", readonly=True
                    ),
                    "a OK [READ-ONLY] EXAMINE completed",
                ],
            ),
        ],
    )
    raw.close()


def test_select_qresync_with_sequence_match_data(imap) -> None:
    """RFC 7162 §3.2.5.2: the message sequence match data may narrow what the server reports; a server
    that remembers every expunge answers exactly the same with it as without it."""
    _changes_by_another_session(imap)
    raw = _session(imap)
    uv = _uidvalidity(raw)
    _script(
        raw,
        [
            (
                f"a EXAMINE INBOX (QRESYNC ({uv} 13 1:12 (1,4,9 1,4,9)))",
                [
                    *_select_lines(
                        uv, exists=10, recent=0, unseen=1, uidnext=14, modseq=19, keywords="$Forwarded", readonly=True
                    ),
                    "* VANISHED (EARLIER) 4,6,9",
                    "* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (14))",
                    "* 4 FETCH (UID 5 FLAGS (\\Answered) MODSEQ (15))",
                    "* 8 FETCH (UID 11 FLAGS ($Forwarded) MODSEQ (18))",
                    "a OK [READ-ONLY] EXAMINE completed",
                ],
            ),
        ],
    )
    raw.close()


# ---- other sessions' expunges --------------------------------------------------------------------
def _until(raw: RawClient, command: str, want: bytes, timeout: float = 5.0) -> list[bytes]:
    """Repeat ``command`` until its answer holds ``want`` (another session's change came through Redis)."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += raw.command(command)
        if want in seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{want!r} not in {seen!r}")


def test_other_sessions_expunges_are_vanished_in_noop_fetch_and_idle(imap) -> None:
    """RFC 7162 §3.2.10.2: after ENABLE QRESYNC, expunges made elsewhere are announced with VANISHED,
    never EXPUNGE, with EXPUNGE's restrictions (RFC 9051 §7.5.1: not while answering FETCH, STORE or
    SEARCH); meanwhile an OK [HIGHESTMODSEQ] below the pending expunge keeps a client that stops there
    from skipping it (RFC 7162 §3.2); RFC 2177: in IDLE at once."""
    _fill(imap, 5)
    a = _session(imap)
    b = _session(imap, qresync=False)
    a.command("s SELECT INBOX")
    b.command("s SELECT INBOX")
    b.command("x UID STORE 2 +FLAGS.SILENT (\\Deleted)")  # MODSEQ 7
    b.command("y UID EXPUNGE 2")  # 8
    seen = _until(a, "n NOOP", b"* VANISHED 2\r\n")
    assert not any(b"EXPUNGE" in line for line in seen)

    b.command("x UID STORE 3 +FLAGS.SILENT (\\Deleted)")  # 9
    b.command("y UID EXPUNGE 3")  # 10
    seen = _until(a, "f FETCH 1:* (FLAGS)", b"* OK [HIGHESTMODSEQ 9] Expunges pending\r\n")
    assert not any(b"VANISHED" in line or b"EXPUNGE" in line for line in seen)
    assert a.command("n NOOP") == [b"* VANISHED 3\r\n", b"n OK NOOP completed\r\n"]

    a.send("i IDLE\r\n")
    assert a.readline() == b"+ idling\r\n"
    b.command("x UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    b.command("y UID EXPUNGE 4")
    line = a.readline()
    while line.startswith(b"* 2 FETCH"):  # the \Deleted flag may come first
        line = a.readline()
    assert line == b"* VANISHED 4\r\n"
    a.send("DONE\r\n")
    assert a.until("i") == [b"i OK IDLE terminated\r\n"]
    a.close()
    b.close()


def test_resync_after_another_sessions_changes_a_delivery_and_a_restart(imap) -> None:
    """RFC 7162 §3.2.5.1 and §6: a client that knew the mailbox at one MOD-SEQUENCE reconnects after
    another session changed flags and expunged, new mail waited in the spool, and the server restarted:
    MOD-SEQUENCEs and the expunge record survived, the drained message took the next MOD-SEQUENCE, and
    one SELECT tells the client exactly what changed."""
    _fill(imap, 6)  # UIDs 1-6, MODSEQ 2-7
    a = _session(imap)
    uv = _uidvalidity(a)
    assert b"* OK [HIGHESTMODSEQ 7] Highest\r\n" in a.command("s SELECT INBOX")
    a.command("l LOGOUT", tag="l")
    a.close()

    b = _session(imap, qresync=False)
    b.command("s SELECT INBOX")
    b.command("x UID STORE 2 +FLAGS.SILENT (\\Seen)")  # MODSEQ 8
    b.command("y UID STORE 3,5 +FLAGS.SILENT (\\Deleted)")  # 9
    b.command("z EXPUNGE")  # 10
    b.command("l LOGOUT", tag="l")
    b.close()
    imap.deliver(message(7))  # sealed into the spool: nobody is signed in to drain it
    imap.restart()

    a = _session(imap)  # signing in drains the spool: UID 7, MODSEQ 11
    _script(
        a,
        [
            (
                f"r SELECT INBOX (QRESYNC ({uv} 7 1:6))",
                [
                    *_select_lines(uv, exists=5, recent=1, unseen=1, uidnext=8, modseq=11),
                    "* VANISHED (EARLIER) 3,5",
                    "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (8))",
                    "r OK [READ-WRITE] SELECT completed",
                ],
            ),
            (
                "f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)",
                [
                    "* VANISHED (EARLIER) 3,5",
                    "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (8))",
                    "* 5 FETCH (UID 7 FLAGS (\\Recent) MODSEQ (11))",
                    "f OK FETCH completed",
                ],
            ),
        ],
    )
    a.close()


def test_fetch_that_sets_seen_reports_uid_and_modseq(imap) -> None:
    """RFC 7162 §3.2.4: with QRESYNC the FETCH response of a flag change (here \\Seen set by BODY[])
    carries the UID and the MODSEQ."""
    _fill(imap, 1)
    raw = _session(imap)
    raw.command("s SELECT INBOX")
    lines = raw.command("f FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
    assert lines[0] == (
        b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {29}\r\nSubject: Message number 1\r\n\r\n"
        b" FLAGS (\\Seen \\Recent) MODSEQ (3))\r\n"
    )
    raw.close()
