"""SORT (RFC 5256 §3), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3): the base-subject rules and the
i;unicode-casemap collation as table tests, then the commands over real sockets."""

from __future__ import annotations

import time

import pytest

from sealmail import mime
from sealmail.mime.basesubject import base_subject
from sealmail.mime.collation import casemap
from sealmail.mime.msgids import message_ids
from sealmail.store.sortkeys import sort_keys

from .conftest import ASCII_ADDRESS, selected_after_appends

# ---- RFC 5256 §2.1: the base subject -------------------------------------------------------------
BASE_SUBJECTS = [
    # (Subject as written, base subject, reply or forward)
    ("Hello world", "Hello world", False),
    ("", "", False),
    # (1) encoded-words decoded to UTF-8; tabs and continuations become spaces; runs of spaces one
    ("=?utf-8?q?=C3=89t=C3=A9?= report", "Été report", False),
    ("a\t\r\n  b", "a b", False),
    ("=?iso-8859-1?q?_?=", "", False),
    ("=?iso-8859-1?q?RE:_C?=", "C", True),
    # (2) trailing "(fwd)" and whitespace, as often as they match
    ("b (fWd)  (fwd)", "b", True),
    ("b (a)", "b (a)", False),
    # (3) subj-leader: *subj-blob subj-refwd, subj-refwd = ("re" / "fw" ["d"]) *WSP [subj-blob] ":"
    ("Re: foo", "foo", True),
    ("RE:foo", "foo", True),
    ("fw: foo", "foo", True),
    ("Fwd : foo", "foo", True),
    ("Re[2]: foo", "foo", True),
    ("Re [2]: foo", "foo", True),
    ("[list] Re: foo", "foo", True),
    ("Red: foo", "Red: foo", False),
    ("Ad: Re: Ad: x", "Ad: Re: Ad: x", False),
    # (4) a leading subj-blob goes only when a non-empty base is left
    ("[list] foo", "foo", False),
    ("[xyz]", "[xyz]", False),
    ("[a] [b]", "[b]", False),
    # (5) repeat (3) and (4)
    ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", True),
    # (6) "[fwd:" ... "]" unwrapped, then again from (2)
    ("[Fwd: hello]", "hello", True),
    ("Re: [FWD: c]", "c", True),
    ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
    ("[fwd: a] b", "b", False),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject_follows_rfc5256_section_2_1(subject: str, base: str, reply: bool) -> None:
    """RFC 5256 §2.1 steps (1)-(7), and "reply or forward" as §4 REFERENCES step 5 defines it."""
    assert base_subject(subject) == (base, reply)


def test_i_unicode_casemap_orders_as_a_user_expects() -> None:
    """RFC 5051: titlecase then NFKD, compared as UTF-8 octets: case-blind, accents after their letter."""
    assert casemap("élan") < casemap("Zebra") < casemap("zèbre")
    assert casemap("re: Été") == casemap("RE: ÉTÉ")
    assert casemap("ǆ") == casemap("ǅ")  # titlecase, not uppercase: "ǅ", not "Ǆ"
    assert casemap("Straße") == "STRAßE"  # the simple mapping keeps one character for one
    assert casemap("ﬁle") == "fiLE"  # the ligature decomposes (NFKD) after titlecasing left it alone
    assert sorted(["b", "_", "[x]", "A", "C"], key=casemap) == ["A", "b", "C", "[x]", "_"]


def test_sort_keys_from_the_first_address() -> None:
    """RFC 5256 §3 (addr-mailbox of the first address; a group's name) and RFC 5957 §3 (display name,
    decoded, else the address)."""
    raw = (
        b"From: =?iso-8859-1?q?=C9mile?= <zed@example.org>, adam@example.org\r\n"
        b"To: team: bob@example.org, carol@example.org;\r\n"
        b"Cc: dave@example.org (Dave D)\r\n"
        b"Subject: Re: [list] Hello\r\n"
        b"Message-ID: <own@example.org>\r\n"
        b"In-Reply-To: <parent@example.org>\r\n\r\nbody\r\n"
    )
    keys = sort_keys(mime.parse(raw))
    assert (keys.from_, keys.to, keys.cc) == ("ZED", "TEAM", "DAVE")
    assert (keys.display_from, keys.display_to) == (casemap("Émile"), "TEAM")
    assert (keys.subject, keys.reply) == ("HELLO", True)
    assert (keys.message_id, keys.references) == ("own@example.org", "parent@example.org")
    bare = sort_keys(mime.parse(b"From: b@c.d\r\nTo: d\r\n\r\n"))
    assert (bare.display_from, bare.display_to, bare.subject) == ("B@C.D", "D", "")


def test_message_ids_are_read_tolerantly() -> None:
    """RFC 5322 §3.6.4 msg-id, as RFC 5256 §4 step 1 reads References: folding, comments and junk tolerated."""
    assert message_ids("<a@b> (comment <x>)\r\n <c@\r\n d>  junk <nope> <e@f>") == ["a@b", "c@d", "e@f"]
    assert message_ids("<<a@b>") == ["a@b"]
    assert message_ids("no ids here") == []


# ---- over the wire -------------------------------------------------------------------------------
def _mail(n: int, *, subject: str, sender: str, to: str, date: str, cc: str = "", size_pad: int = 0) -> bytes:
    cc_line = f"Cc: {cc}\r\n" if cc else ""
    return (
        f"From: {sender}\r\nTo: {to}\r\n{cc_line}Subject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <s{n}@example.org>\r\n\r\nbody {n}{'x' * size_pad}\r\n"
    ).encode()


# Five messages with every key different from arrival order (APPEND order is arrival order here, each
# APPEND given its own INTERNALDATE).
MAILS = [
    _mail(
        1,
        subject="Zebra crossing",
        sender="Yves <yves@example.org>",
        to="carol@example.org",
        date="Tue, 3 Nov 2026 09:00:00 +0000",
        cc="bob@example.org",
        size_pad=300,
    ),
    _mail(
        2,
        subject="=?utf-8?q?=C3=A9lan?=",
        sender="anna@example.org",
        to="Zed <alice@example.org>",
        date="Mon, 2 Nov 2026 09:00:00 +0000",
        size_pad=100,
    ),
    _mail(
        3,
        subject="Re: zebra CROSSING",
        sender="Bert <bert@example.org>",
        to="bob@example.org",
        date="Tue, 3 Nov 2026 10:00:00 +0100",
        cc="alice@example.org",
    ),
    _mail(
        4,
        subject="[list] Fwd: Budget",
        sender="=?iso-8859-1?q?=C9mile?= <zoe@example.org>",
        to="Anna <zed@example.org>",
        date="not a date",
        size_pad=200,
    ),
    _mail(5, subject="budget", sender="yves@example.org", to="bob@example.org", date="Wed, 4 Nov 2026 09:00:00 +0000"),
]
INTERNAL = [
    "05-Nov-2026 10:00:00 +0000",
    "04-Nov-2026 10:00:00 +0000",
    "06-Nov-2026 10:00:00 +0000",
    "03-Nov-2026 09:30:00 +0000",
    "07-Nov-2026 10:00:00 +0000",
]

# (criteria, expected sequence numbers): each line states the rule it checks
SORTS = [
    ("(ARRIVAL)", "4 2 1 3 5"),  # INTERNALDATE
    ("(REVERSE ARRIVAL)", "5 3 1 2 4"),
    # §2.2: the Date header in UTC (3 is 10:00 +0100, the same instant as 1: mailbox order decides);
    # message 4's cannot be parsed: its INTERNALDATE (3 Nov 09:30) stands in
    ("(DATE)", "2 1 3 4 5"),
    ("(REVERSE DATE)", "5 4 1 3 2"),
    ("(SIZE)", "5 3 2 4 1"),
    # §2.1 base subjects "budget" (4: "[list] Fwd:" removed), "élan", "zebra crossing" (3: "Re:"); ties by number
    ("(SUBJECT)", "4 5 2 1 3"),
    ("(REVERSE SUBJECT)", "1 3 2 4 5"),
    ("(SUBJECT ARRIVAL)", "4 5 2 1 3"),
    ("(SUBJECT REVERSE DATE)", "5 4 2 1 3"),
    # §3: the first From's addr-mailbox: anna, bert, yves, yves, zoe
    ("(FROM)", "2 3 1 5 4"),
    ("(TO)", "2 3 5 1 4"),  # alice, bob, bob, carol, zed
    ("(CC)", "2 4 5 3 1"),  # no Cc sorts first (""), then alice, bob
    # RFC 5957: display name when there is one (decoded), else the address
    ("(DISPLAYFROM)", "2 3 4 1 5"),  # anna@..., Bert, Émile, Yves, yves@...
    ("(DISPLAYTO)", "4 3 5 1 2"),  # Anna, bob@..., bob@..., carol@..., Zed
]


@pytest.fixture
def sorted_box(imap):
    with selected_after_appends(imap, list(zip(MAILS, INTERNAL, strict=True))) as raw:
        yield raw


def test_sort_and_thread_are_advertised(sorted_box) -> None:
    """RFC 5256 §1, RFC 5957 §2, RFC 5267 §3: the capabilities a client looks for."""
    caps = sorted_box.command("c CAPABILITY")[0].decode().split()
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"):
        assert cap in caps


@pytest.mark.parametrize(("criteria", "expected"), SORTS)
def test_sort_keys_over_the_wire(sorted_box, criteria: str, expected: str) -> None:
    """RFC 5256 §3 every sort key, REVERSE per key, later keys break ties, then the mailbox order."""
    lines = sorted_box.command(f"a SORT {criteria} UTF-8 ALL")
    assert lines == [f"* SORT {expected}\r\n".encode(), b"a OK SORT completed\r\n"]


def test_uid_sort_and_search_criteria(sorted_box) -> None:
    """RFC 5256 §3: UID SORT answers UIDs; the search criteria select which messages are sorted."""
    assert sorted_box.command("u1 UID SORT (DATE) US-ASCII ALL")[0] == b"* SORT 2 1 3 4 5\r\n"
    assert sorted_box.command("u2 SORT (SUBJECT) UTF-8 SUBJECT budget")[0] == b"* SORT 4 5\r\n"
    assert sorted_box.command("u3 SORT (REVERSE SIZE) UTF-8 2:4 NOT FROM bert")[0] == b"* SORT 4 2\r\n"
    assert sorted_box.command('u4 SORT (ARRIVAL) UTF-8 SUBJECT "nothing matches"')[0] == b"* SORT\r\n"


def test_sort_bad_input_gets_the_rfc_answer_and_the_session_goes_on(sorted_box) -> None:
    """RFC 5256 §3: BAD for a malformed command or an unknown key; NO [BADCHARSET] for an unknown charset."""
    assert sorted_box.command("b1 SORT (SUBJECT) KOI8-R ALL")[-1] == (
        b"b1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    )
    assert sorted_box.command("b2 SORT (COLOUR) UTF-8 ALL")[-1].startswith(b"b2 BAD")
    assert sorted_box.command("b3 SORT () UTF-8 ALL")[-1].startswith(b"b3 BAD")
    assert sorted_box.command("b4 SORT (REVERSE) UTF-8 ALL")[-1].startswith(b"b4 BAD")
    assert sorted_box.command("b5 SORT (DATE) ALL")[-1].startswith(b"b5 BAD")  # the charset is not optional
    assert sorted_box.command("b6 SORT (DATE) UTF-8 ALL")[0] == b"* SORT 2 1 3 4 5\r\n"


def test_sort_needs_a_selected_mailbox(imap) -> None:
    """RFC 5256 §3: SORT is valid in the selected state only."""
    raw = imap.raw()
    raw.login(imap.account(ASCII_ADDRESS))
    assert raw.command("n SORT (DATE) UTF-8 ALL")[-1].startswith(b"n BAD")
    raw.close()


ESORTS = [
    # RFC 5267 §3.2: MIN and MAX are the first and the last in sort order; ALL keeps the sort order
    ("(MIN)", "(SUBJECT)", "MIN 4"),
    ("(MAX)", "(SUBJECT)", "MAX 3"),
    ("(MIN MAX COUNT)", "(ARRIVAL)", "MIN 4 MAX 5 COUNT 5"),
    ("()", "(SUBJECT)", "ALL 4:5,2,1,3"),
    ("(ALL)", "(REVERSE ARRIVAL)", "ALL 5,3,1:2,4"),
    ("(COUNT)", "(DATE)", "COUNT 5"),
    # RFC 5267 §4.4: PARTIAL low:high, either way round, of the sorted result
    ("(PARTIAL 2:3)", "(REVERSE ARRIVAL)", "PARTIAL (2:3 3,1)"),
    ("(PARTIAL 4:2)", "(ARRIVAL)", "PARTIAL (2:4 2,1,3)"),
    ("(PARTIAL 6:9)", "(ARRIVAL)", "PARTIAL (6:9 NIL)"),
]


@pytest.mark.parametrize(("returns", "criteria", "expected"), ESORTS)
def test_esort_return_options(sorted_box, returns: str, criteria: str, expected: str) -> None:
    """RFC 5267 §3: SORT RETURN (...) answers with one ESEARCH response tagged with the command's tag."""
    lines = sorted_box.command(f"e SORT RETURN {returns} {criteria} UTF-8 ALL")
    assert lines == [f'* ESEARCH (TAG "e") {expected}\r\n'.encode(), b"e OK SORT completed\r\n"]


def test_uid_esort_and_bad_partial(sorted_box) -> None:
    """RFC 5267 §3.2: UID SORT RETURN marks its answer UID; a PARTIAL range is two non-zero numbers."""
    assert sorted_box.command("e1 UID SORT RETURN (ALL COUNT) (SIZE) UTF-8 ALL")[0] == (
        b'* ESEARCH (TAG "e1") UID ALL 5,3,2,4,1 COUNT 5\r\n'
    )
    for bad in ("(PARTIAL 1)", "(PARTIAL 1:*)", "(PARTIAL *:1)", "(PARTIAL 0:2)", "(BOGUS)"):
        assert sorted_box.command(f"e2 SORT RETURN {bad} (SIZE) UTF-8 ALL")[-1].startswith(b"e2 BAD"), bad


def test_sort_and_thread_results_follow_changes_from_any_session(imap, sorted_box) -> None:
    """RFC 5256 §3 with RFC 9051 §7.5: a repeated SORT/THREAD answers for the folder as it is now, also
    when another session (here: another connection, sharing the process) changed it in between."""
    assert sorted_box.command("a SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 4 2 1 3 5\r\n"
    assert sorted_box.command("b SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 4 2 1 3 5\r\n"
    assert sorted_box.command("b2 SORT (ARRIVAL) UTF-8 ALL")[0] == b"* SORT 4 2 1 3 5\r\n"
    other = imap.client(ASCII_ADDRESS)
    other.select("INBOX")
    assert other.store("2", "+FLAGS", "(\\Seen)")[0] == "OK"
    time.sleep(0.5)  # the change event reaches this session; the NOOP absorbs it
    sorted_box.command("n0 NOOP")
    assert sorted_box.command("b3 SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 4 1 3 5\r\n"
    assert sorted_box.command("b4 SORT (ARRIVAL) UTF-8 ALL")[0] == b"* SORT 4 2 1 3 5\r\n"
    assert other.store("4", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert other.expunge()[0] == "OK"
    other.logout()
    sorted_box.command("n NOOP")
    assert sorted_box.command("c SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 1 3 4\r\n"
    assert sorted_box.command("c2 SORT (ARRIVAL) UTF-8 ALL")[0] == b"* SORT 2 1 3 4\r\n"
    assert sorted_box.command("d THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (2)(1 3)(4)\r\n"
    # a second session at the same state gets the same answer (the process keeps it for both)
    second = imap.raw()
    second.login(imap.account(ASCII_ADDRESS))
    second.command("s SELECT INBOX")
    assert second.command("e SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 1 3 4\r\n"
    assert second.command("f UID SORT (ARRIVAL) UTF-8 UNSEEN")[0] == b"* SORT 1 3 5\r\n"
    second.close()
