"""Fuzz targets: the IMAP command grammar (imap/parser.py) and modified UTF-7 (imap/mutf7.py).

The session turns ``ParseError`` into ``tag BAD`` (RFC 9051 §7.1.5); any other exception would be a
``NO [SERVERBUG]`` or a dropped connection, so every input must give a command or a ParseError.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sealmail.imap import mutf7
from sealmail.imap import parser as p

from .fuzzkit import fuzz, lines_from

WORDS = [
    '"x', '"\\', "a ", "A1 ", "* ", "+ ", " ", "(", ")", "[", "]", "<", ">", "{", "}", "*", "%", '"', "\\", ":", ",", ".", "+",
    "-", "~", "$", "0", "1", "42", "4294967295", "4294967296", "99999999999999999999999", "\r\n", "\n", "\x00",
    "LOGIN", "SELECT", "EXAMINE", "FETCH", "UID", "STORE", "SEARCH", "LIST", "LSUB", "APPEND", "STATUS", "COPY",
    "MOVE", "CREATE", "RENAME", "ENABLE", "ID", "AUTHENTICATE", "IDLE", "EXPUNGE", "GETQUOTA", "GETQUOTAROOT",
    "SETQUOTA", "NIL", "FLAGS", "FLAGS.SILENT", "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
    "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "MIME", "TEXT", "RETURN", "CHARSET", "OR", "NOT", "KEYWORD",
    "SINCE", "SENTON", "LARGER", "MODSEQ", "OLDER", "YOUNGER", "SAVE", "1-Jan-2026", "31-Feb-2026", '"01-Jan-2026 10:00:00 +0100"',
    '"29-Feb-2025 10:00:00 +9999"', "(CONDSTORE)", "UNCHANGEDSINCE", "CHANGEDSINCE", "USE", "(\\Sent)", "\\Seen",
    "INBOX", "&-", "&AOk-", "&Jjo", "&U,BTFw-", "{3}\r\nabc", "{2+}\r\nab", "~{1}\r\n\x00", "{5}\r\n", "{0}\r\n",
    "UTF8 (", "STATUS (MESSAGES", "SUBSCRIBED", "RECURSIVEMATCH", "SPECIAL-USE", "PLAIN ", "=", "AGFiYwBw",
]  # fmt: skip


COMMANDS = [
    "LOGIN", "SELECT", "EXAMINE", "FETCH", "UID FETCH", "UID SEARCH", "UID STORE", "UID COPY", "UID MOVE",
    "UID EXPUNGE", "STORE", "SEARCH", "LIST", "LSUB", "APPEND", "STATUS", "COPY", "MOVE", "CREATE", "DELETE",
    "RENAME", "ENABLE", "ID", "AUTHENTICATE", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "SUBSCRIBE", "NOOP",
]  # fmt: skip
# SORT, THREAD (RFC 5256) and search contexts (RFC 5267)
WORDS += [
    "SORT", "THREAD", "REFERENCES", "ORDEREDSUBJECT", "REVERSE", "ARRIVAL", "DATE", "SUBJECT", "DISPLAYFROM",
    "(DATE)", "(REVERSE SIZE)", "UTF-8", "US-ASCII", "PARTIAL", "1:5", "UPDATE", "CONTEXT", "CANCELUPDATE",
]  # fmt: skip
COMMANDS += ["SORT", "UID SORT", "THREAD", "UID THREAD", "CANCELUPDATE"]
_SEQUENCED = ("FETCH", "UID FETCH", "UID STORE", "UID COPY", "UID MOVE", "UID EXPUNGE", "STORE", "COPY", "MOVE")
_token = st.one_of(st.sampled_from(WORDS), st.text(alphabet='ABCDEFXYZ.[]<>()0123456789\\"*%:', max_size=8))


def _command(tag: bytes, name: str, seq: str, tokens: list[str]) -> bytes:
    """Grammar-shaped: tag SP name SP [sequence-set SP] tokens separated by spaces."""
    head = [name, seq] if name in _SEQUENCED else [name]
    return tag + b" " + " ".join(head + tokens).encode("utf-8", "surrogatepass")


commands = st.builds(
    _command,
    st.sampled_from([b"a", b"A1", b"x]"]),
    st.sampled_from(COMMANDS),
    st.sampled_from(["1", "*", "1:*", "2,4:5", "4294967295", "0", "1:", "$"]),
    st.lists(_token, max_size=8),
)


@fuzz()
@given(st.one_of(st.binary(max_size=300), lines_from(WORDS, max_size=30), commands), st.booleans(), st.floats(0, 1))
def test_parse_command_gives_a_command_or_parse_error(data: bytes, utf8: bool, fraction: float) -> None:
    """RFC 9051 §7.1.5: what cannot be parsed is BAD; the parser says so with ParseError, nothing else.
    Each input is tried as it is, as a complete line, and cut short anywhere (a command ends early)."""
    cut = int(len(data) * fraction)
    for candidate in (data, data + b"\r\n", data[:cut], data[:cut] + b"\r\n"):
        try:
            command: p.Command | p.ParseError = p.parse_command(candidate, utf8=utf8)
        except p.ParseError as exc:
            command = exc
        if isinstance(command, p.ParseError):
            assert command.tag is None or candidate.startswith(command.tag.encode())
            continue
        assert isinstance(command, p.Command)
        assert command.tag
        assert " " not in command.tag


@fuzz()
@given(st.one_of(st.binary(max_size=200), lines_from(WORDS)))
def test_line_helpers_never_raise(data: bytes) -> None:
    """The server loop reads tags, names and literal announcements of any line before parsing it."""
    announced = p.literal_announcement(data)
    if announced is not None:
        size, sync, binary = announced
        assert 0 <= size < 10**21
        assert isinstance(sync, bool)
        assert isinstance(binary, bool)
    tag = p.read_tag(data)
    assert tag is None or (tag and " " not in tag)
    name = p.command_name(data)
    assert name is None or name == name.upper()


@fuzz()
@given(st.one_of(st.text(max_size=60), st.text(alphabet="&-,+/AZaz09 ~\x7f\x1f", max_size=40)))
def test_mutf7_decode_gives_text_or_value_error(text: str) -> None:
    """RFC 3501 §5.1.3: invalid modified UTF-7 is ValueError, which the parser keeps as the raw name."""
    try:
        decoded = mutf7.decode(text)
    except ValueError:
        return
    assert mutf7.decode(mutf7.encode(decoded)) == decoded


@fuzz()
@given(st.text(max_size=60))
def test_mutf7_round_trip(name: str) -> None:
    """Every Unicode mailbox name has a modified UTF-7 form that decodes to it (RFC 3501 §5.1.3)."""
    encoded = mutf7.encode(name)
    assert encoded.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert mutf7.decode(encoded) == name


@fuzz()
@given(st.binary(max_size=80), st.booleans())
def test_mailbox_names_decode_or_parse_error(raw: bytes, utf8: bool) -> None:
    try:
        name = p.decode_mailbox(raw, utf8, p.Reader(raw))
    except p.ParseError:
        return
    assert isinstance(name, str)
