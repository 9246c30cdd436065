"""The IMAP grammar (RFC 9051 §9): typed commands from complete commands, ParseError otherwise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealmail.imap import mutf7, wire
from sealmail.imap import parser as p
from sealmail.mime.imap import Adjacent
from sealmail.store import search as sk


def parse(line: bytes | str, **kw) -> p.Command:
    data = line.encode() if isinstance(line, str) else line
    return p.parse_command(data + b"\r\n", **kw)


def test_atoms_quoted_and_literals() -> None:
    """RFC 9051 §4.1-4.3: atom, quoted string with escapes, literal, non-synchronizing literal."""
    cmd = parse('a1 LOGIN alice "pa\\"ss\\\\word"')
    assert cmd == p.Login("a1", "LOGIN", "alice", 'pa"ss\\word')
    cmd = parse(b"a2 LOGIN {5}\r\nalice {3+}\r\nx y")
    assert cmd == p.Login("a2", "LOGIN", "alice", "x y")
    with pytest.raises(p.ParseError) as err:
        parse('a3 LOGIN "unterminated')
    assert err.value.tag == "a3"
    with pytest.raises(p.ParseError):
        parse("a4 LOGIN alice")
    with pytest.raises(p.ParseError) as err:
        parse("+bad NOOP")
    assert err.value.tag is None


def test_literal_announcements() -> None:
    """RFC 9051 §4.3 and RFC 7888: {n} synchronizing, {n+} non-synchronizing, ~{n} literal8."""
    assert p.literal_announcement(b"a APPEND x {12}\r\n") == (12, True, False)
    assert p.literal_announcement(b"a APPEND x {12+}\r\n") == (12, False, False)
    assert p.literal_announcement(b"a APPEND x ~{7}\r\n") == (7, True, True)
    assert p.literal_announcement(b"a NOOP\r\n") is None
    assert p.literal_announcement(b"a X {abc}\r\n") is None


def test_sequence_sets() -> None:
    """RFC 9051 §9 sequence-set, with "*"."""
    cmd = parse("f FETCH 1:3,7,9:*,* FLAGS")
    assert isinstance(cmd, p.Fetch)
    assert cmd.seqs.ranges == ((1, 3), (7, 7), (9, None), (None, None))
    assert str(cmd.seqs) == "1:3,7,9:*,*"
    for bad in (
        "f FETCH 0 FLAGS",
        "f FETCH 1:0 FLAGS",
        "f FETCH 1, FLAGS",
        "f FETCH a FLAGS",
        "f FETCH 99999999999 FLAGS",
    ):
        with pytest.raises(p.ParseError):
            parse(bad)


def test_fetch_attributes() -> None:
    """RFC 9051 §6.4.5: macros, BODY[section]<partial>, BODY.PEEK, BINARY, CHANGEDSINCE (RFC 7162)."""
    cmd = parse("f UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[1.2.MIME] BINARY[2]<0.100>)")
    assert isinstance(cmd, p.Fetch)
    assert cmd.uid
    assert cmd.atts == (
        p.FetchAtt("FLAGS"),
        p.FetchAtt("BODY[", "HEADER.FIELDS (FROM SUBJECT)", "HEADER.FIELDS (From Subject)", None, peek=True),
        p.FetchAtt("BODY[", "1.2.MIME", "1.2.MIME"),
        p.FetchAtt("BINARY[", "2", "2", (0, 100)),
    )
    assert [a.kind for a in parse("f FETCH 1 ALL").atts] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
    assert parse("f FETCH 1 BODY[]<5.10>").atts == (p.FetchAtt("BODY[", "", "", (5, 10)),)
    assert parse("f FETCH 1 (MODSEQ) (CHANGEDSINCE 12345)").changed_since == 12345
    assert parse("f FETCH 1 BODY[3.TEXT]").atts[0].section == "3.TEXT"
    for bad in ("f FETCH 1 (FLAGS", "f FETCH 1 BODY[MIME]", "f FETCH 1 BODY[1.]", "f FETCH 1 FOO", "f FETCH 1 ()"):
        with pytest.raises(p.ParseError):
            parse(bad)


def test_store_and_copy() -> None:
    """RFC 9051 §6.4.6-6.4.8, RFC 7162 §3.1.3 UNCHANGEDSINCE, RFC 6851 MOVE."""
    cmd = parse("s STORE 2:4 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted $Junk)")
    assert cmd == p.Store("s", "STORE", False, p.SequenceSet(((2, 4),)), "add", True, ("\\Deleted", "$Junk"), 320162338)
    cmd = parse("s UID STORE 1 -FLAGS \\Seen \\Flagged")
    assert isinstance(cmd, p.Store)
    assert (cmd.uid, cmd.mode, cmd.flags) == (True, "remove", ("\\Seen", "\\Flagged"))
    assert parse("m UID MOVE 1:2 Trash") == p.Copy("m", "MOVE", True, p.SequenceSet(((1, 2),)), "Trash")
    with pytest.raises(p.ParseError):
        parse("s STORE 1 FLAGZ (\\Seen)")


def test_search_programs() -> None:
    """RFC 9051 §6.4.4: keys, OR/NOT, parentheses, dates, sequence sets; RFC 4731 RETURN; CHARSET."""
    cmd = parse('s SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM "bob" SINCE 1-Feb-2026) NOT 2:4 UNSEEN')
    assert isinstance(cmd, p.Search)
    assert cmd.returns == ("MIN", "COUNT")
    assert cmd.charset == "UTF-8"
    assert cmd.key == sk.And(
        (
            sk.Or(
                sk.And((sk.Text("from", "bob"), sk.DateKey("internal", "since", date(2026, 2, 1)))),
                sk.Not(p.SeqSetKey(p.SequenceSet(((2, 4),)))),
            ),
            sk.Not(sk.HasFlag("\\Seen")),
        )
    )
    assert parse("s UID SEARCH UID 5:* HEADER X-Spam yes").key == sk.And(
        (p.UidSetKey(p.SequenceSet(((5, None),))), sk.Header("X-Spam", "yes"))
    )
    assert parse("s SEARCH NEW").key == sk.And((p.RecentKey(), sk.Not(sk.HasFlag("\\Seen"))))
    assert parse('s SEARCH MODSEQ "/flags/\\\\draft" all 620162338').key == sk.ModSeq(620162338)
    assert parse(b"s SEARCH SUBJECT {3}\r\n\xc3\xa9t").key == sk.Text("subject", "ét")
    for bad in ("s SEARCH", "s SEARCH FOO", "s SEARCH OR 1", "s SEARCH SINCE 31-Feb-2026", "s SEARCH (ALL"):
        with pytest.raises(p.ParseError):
            parse(bad)
    with pytest.raises(p.ParseError):
        parse("s SEARCH " + "NOT " * 200 + "ALL")  # bounded nesting


def test_list_and_mailbox_names() -> None:
    """RFC 5258 LIST-EXTENDED syntax, RFC 5819 STATUS return; RFC 3501 §5.1.3 modified UTF-7."""
    cmd = parse('l LIST (SUBSCRIBED) "" ("INBOX" "Sent/%") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
    assert isinstance(cmd, p.ListCommand)
    assert cmd.select_opts == {"SUBSCRIBED"}
    assert cmd.patterns == ("INBOX", "Sent/%")
    assert cmd.return_opts == {"CHILDREN", "STATUS"}
    assert cmd.status_items == ("MESSAGES", "UNSEEN")
    assert parse('l LIST "" %').patterns == ("%",)
    assert parse("c CREATE &AOk-t&AOk-").mailbox == "été"
    assert parse("c CREATE &AOk-t&AOk-", utf8=True).mailbox == "&AOk-t&AOk-"
    assert parse('c CREATE "été"', utf8=True).mailbox == "été"
    assert parse("c CREATE Drafts (USE (\\Drafts))") == p.Create("c", "CREATE", "Drafts", "\\Drafts")


def test_append() -> None:
    """RFC 9051 §6.3.12 with flags and date-time; RFC 6855 §4 UTF8 (~{n}); RFC 3516 literal8."""
    cmd = parse(b'a APPEND Sent (\\Seen) " 5-Nov-2026 14:30:00 -0500" {5}\r\nHello')
    assert cmd == p.Append(
        "a",
        "APPEND",
        "Sent",
        ("\\Seen",),
        datetime(2026, 11, 5, 14, 30, tzinfo=timezone(-timedelta(hours=5))),
        b"Hello",
    )
    assert parse(b"a APPEND INBOX UTF8 (~{3}\r\n\x00ab)").message == b"\x00ab"
    assert parse(b"a APPEND INBOX ~{2}\r\nab").message == b"ab"
    with pytest.raises(p.ParseError):
        parse(b"a APPEND INBOX {3}\r\na\x00b")  # NUL needs literal8
    with pytest.raises(p.ParseError):
        parse(b'a APPEND INBOX "32-Jan-2026 00:00:00 +0000" {1}\r\nx')


def test_other_commands() -> None:
    assert parse("a AUTHENTICATE PLAIN AGEAYg==") == p.Authenticate("a", "AUTHENTICATE", "PLAIN", b"\x00a\x00b")
    assert parse("a AUTHENTICATE PLAIN =").initial == b""
    assert parse("a ENABLE CONDSTORE utf8=accept").capabilities == ("CONDSTORE", "UTF8=ACCEPT")
    assert parse('a ID ("name" "mutt" "version" NIL)').params == {"name": "mutt", "version": None}
    assert parse("a ID NIL").params is None
    assert parse("a SELECT INBOX (CONDSTORE)") == p.Select("a", "SELECT", "INBOX", False, True)
    assert parse("a STATUS INBOX (MESSAGES UIDNEXT)").items == ("MESSAGES", "UIDNEXT")
    assert parse("a UID EXPUNGE 3:5") == p.UidExpunge("a", "UID EXPUNGE", p.SequenceSet(((3, 5),)))
    assert parse("a noop") == p.Simple("a", "NOOP")
    with pytest.raises(p.ParseError):
        parse("a NOOP extra")
    with pytest.raises(p.ParseError):
        parse("a FROBNICATE")


def test_modified_utf7_round_trip() -> None:
    for name in ("INBOX", "été", "日本語/メール", "a&b", "~peter/mail/台北/日本語", "Entwürfe"):
        assert mutf7.decode(mutf7.encode(name)) == name
    assert mutf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert mutf7.encode("a&b") == "a&-b"
    for bad in ("&Jjo!", "&AGE-", "&", "\u00e9"):
        with pytest.raises(ValueError, match=r"UTF-7|ASCII"):
            mutf7.decode(bad)


def test_wire_strings() -> None:
    """RFC 9051 §4.3: quoted when safe, literals for CR/LF/8-bit unless UTF8=ACCEPT."""
    assert wire.serialize(['a"b', None, 7, ["x"]]) == b'("a\\"b" NIL 7 ("x"))'
    assert wire.serialize("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert wire.serialize("été") == b"{5}\r\n\xc3\xa9t\xc3\xa9"
    assert wire.serialize("été", utf8=True) == b'"\xc3\xa9t\xc3\xa9"'
    assert wire.date_time(datetime(2026, 1, 5, 3, 4, 5, tzinfo=UTC)) == b'"05-Jan-2026 03:04:05 +0000"'
    assert wire.sequence_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"


COMMAND_WORDS = [
    "LOGIN", "SELECT", "FETCH", "UID", "STORE", "SEARCH", "LIST", "APPEND", "STATUS", "COPY", "MOVE", "CREATE",
    "RENAME", "ENABLE", "ID", "AUTHENTICATE", "IDLE", "EXPUNGE", "NOOP", "LSUB", "GETQUOTAROOT", "SETQUOTA",
    "COMPRESS",
]  # fmt: skip
TOKENS = [
    " ", "(", ")", "[", "]", "<", ">", "{", "}", "*", "%", '"', "\\", ":", ",", ".", "+", "-", "~", "1", "42", "0",
    "NIL", "FLAGS", "BODY", "BODY.PEEK", "HEADER.FIELDS", "MIME", "TEXT", "RETURN", "CHARSET", "UTF-8", "OR", "NOT",
    "UID", "1:*", "INBOX", "\\Seen", "{3}\r\nabc", "{2+}\r\nab", "~{1}\r\n\x00", "\r\n", "\x00", "é", "SINCE",
    "1-Jan-2026", "(CONDSTORE)", "UNCHANGEDSINCE", "CHANGEDSINCE", "MODSEQ",
    "QRESYNC", "VANISHED", "(QRESYNC (1 2 1:3 (1 2)))", "DEFLATE",
]  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda tag, word, rest: (tag + " " + word + "".join(rest)).encode("utf-8"),
            st.sampled_from(["a", "A1", "*", "", "x]"]),
            st.sampled_from(COMMAND_WORDS),
            st.lists(st.sampled_from(TOKENS), max_size=25),
        ),
    ),
    st.booleans(),
)
def test_parser_never_raises_anything_but_parse_error(data: bytes, utf8: bool) -> None:
    """Property: any input yields a command or a ParseError — never another exception."""
    try:
        command: object = p.parse_command(data + b"\r\n", utf8=utf8)
    except p.ParseError as exc:
        command = exc
    assert isinstance(command, p.Command | p.ParseError)


nested = st.recursive(
    st.none()
    | st.integers(0, 2**32)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
    lambda children: st.lists(children, max_size=5),
    max_leaves=30,
)


@given(nested, st.booleans())
def test_fast_serialiser_agrees_with_the_reference(value, utf8: bool) -> None:
    """FETCH's fast path writes exactly what the reference serialiser (``imap_serialize``) writes."""
    assert wire.serialize(value, utf8) == wire.imap_serialize(value, utf8=utf8)


address = st.lists(st.none() | st.text(max_size=12), min_size=4, max_size=4)
address_list = st.none() | st.lists(address, max_size=3) | st.lists(address, max_size=3).map(Adjacent)
envelope = st.tuples(
    st.none() | st.text(max_size=20), st.none() | st.text(max_size=20), *[address_list] * 6,
    st.none() | st.text(max_size=10), st.none() | st.text(max_size=10),
).map(list)  # fmt: skip


@given(envelope, st.booleans())
def test_envelope_fast_path_agrees(value, utf8: bool) -> None:
    assert wire.envelope_text(value, utf8) == wire.serialize_text(value, utf8)
