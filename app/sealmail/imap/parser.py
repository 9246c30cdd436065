"""The IMAP command grammar (RFC 9051 §9, RFC 3501 §9 and the extensions we announce).

``parse_command`` takes one complete command exactly as the client sent it — its lines with
every literal's octets in place after the ``{n}``/``{n+}``/``~{n}`` announcement and line end —
and returns a typed command object, or raises ``ParseError`` carrying the tag when there was one
(the session answers ``tag BAD ...`` and goes on). A small recursive-descent reader walks the
octets: atoms, quoted strings, literals, sequence sets, flags, dates, search programs and fetch
attributes. No regular expressions over lines.

Mailbox names are decoded here (modified UTF-7 for RFC 3501 clients, UTF-8 once UTF8=ACCEPT is
enabled, RFC 6855 §3) and come out as the store's Unicode names.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal, cast

from sealmail.imap import mutf7
from sealmail.store import search as sk
from sealmail.store.ordering import SORT_FIELDS, SortCriterion, SortField

MAX_NUMBER = 2**32 - 1
MAX_MODSEQ = 2**63 - 1
MAX_DEPTH = 50  # nesting of search parentheses and NOT/OR: bounded, so no input exhausts the stack

_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_ATOM_CHARS = frozenset(c for c in range(0x21, 0x7F) if c not in _ATOM_SPECIALS)
_ASTRING_CHARS = _ATOM_CHARS | {ord("]")}
_LIST_CHARS = _ASTRING_CHARS | {ord("%"), ord("*")}
# Atoms are ASCII (RFC 9051 §9), but Python's imaplib (and getmail6 on it) sends a UTF-8 user name
# as an atom: text arguments take 8-bit octets in atoms too, checked as UTF-8.
_TEXT_ASTRING_CHARS = _ASTRING_CHARS | frozenset(range(0x80, 0x100))
_TAG_CHARS = _ASTRING_CHARS - {ord("+")}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DIGITS = frozenset(b"0123456789")


class ParseError(Exception):
    """The command is not valid IMAP. ``tag`` is None when not even the tag could be read."""

    def __init__(self, message: str, tag: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.code = code


# ---- values -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SequenceSet:
    """RFC 9051 §9 sequence-set: inclusive ranges; ``None`` stands for ``*``. ``saved``: the set is
    ``$``, the messages the last SEARCH RETURN (SAVE) kept (RFC 5182), and ``ranges`` is empty."""

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def one(n: int | None) -> str:
            return "*" if n is None else str(n)

        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.ranges)


# Search keys the session resolves before the store sees them (only it knows sequence numbers,
# its largest UID for "*", and which messages are \Recent to it).
@dataclass(frozen=True, slots=True)
class SeqSetKey(sk.SearchKey):
    seqs: SequenceSet


@dataclass(frozen=True, slots=True)
class UidSetKey(sk.SearchKey):
    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class RecentKey(sk.SearchKey):
    pass


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One fetch attribute. ``kind`` is the item name (``BODY[]`` kinds are "BODY[" and "BINARY[")."""

    kind: str
    section: str = ""  # store form: "", "HEADER", "1.2.MIME", "HEADER.FIELDS (A B)"...
    echo: str = ""  # the section as the response names it
    partial: tuple[int, int] | None = None
    peek: bool = False
    lazy: bool = False  # PREVIEW (LAZY), RFC 8970 §3.1


# ---- commands -----------------------------------------------------------------------------------
@dataclass(slots=True)
class Command:
    tag: str
    name: str


@dataclass(slots=True)
class Simple(Command):
    """CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, UNSELECT, IDLE, NAMESPACE, EXPUNGE."""


@dataclass(slots=True)
class Login(Command):
    user: str = ""
    password: str = ""


@dataclass(slots=True)
class Authenticate(Command):
    mechanism: str = ""
    initial: bytes | None = None  # SASL-IR (RFC 4959), decoded; b"" for "="


@dataclass(slots=True)
class Enable(Command):
    capabilities: tuple[str, ...] = ()


@dataclass(slots=True)
class Id(Command):
    params: dict[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """RFC 7162 §3.2.5: what the client last knew of the mailbox (sets never hold "*")."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None  # known sequence numbers, their UIDs


@dataclass(slots=True)
class Select(Command):
    mailbox: str = ""
    readonly: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(slots=True)
class Create(Command):
    mailbox: str = ""
    special_use: str | None = None


@dataclass(slots=True)
class MailboxCommand(Command):
    """DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT."""

    mailbox: str = ""


@dataclass(slots=True)
class Rename(Command):
    old: str = ""
    new: str = ""


@dataclass(slots=True)
class ListCommand(Command):
    reference: str = ""
    patterns: tuple[str, ...] = ()
    select_opts: frozenset[str] = frozenset()
    return_opts: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    extended: bool = False  # LIST-EXTENDED syntax was used (RFC 5258)


@dataclass(slots=True)
class Status(Command):
    mailbox: str = ""
    items: tuple[str, ...] = ()


@dataclass(slots=True)
class Append(Command):
    mailbox: str = ""
    flags: tuple[str, ...] = ()
    date: datetime | None = None
    message: bytes = b""


@dataclass(slots=True)
class Search(Command):
    uid: bool = False
    charset: str | None = None
    key: sk.SearchKey = field(default_factory=sk.All)
    returns: tuple[str, ...] | None = None  # ESEARCH RETURN options (RFC 4731); () means ALL
    partial: tuple[int, int] | None = None  # RETURN (PARTIAL low:high), RFC 5267 §4.4


@dataclass(slots=True)
class Sort(Command):
    """SORT and UID SORT (RFC 5256 §3), with ESORT's RETURN options (RFC 5267 §3)."""

    uid: bool = False
    criteria: tuple[SortCriterion, ...] = ()
    charset: str = "UTF-8"
    key: sk.SearchKey = field(default_factory=sk.All)
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None


@dataclass(slots=True)
class CancelUpdate(Command):
    """CANCELUPDATE "tag" ... (RFC 5267 §4.2): the search contexts to stop updating."""

    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class Thread(Command):
    """THREAD and UID THREAD (RFC 5256 §3)."""

    uid: bool = False
    algorithm: str = "REFERENCES"
    charset: str = "UTF-8"
    key: sk.SearchKey = field(default_factory=sk.All)


@dataclass(slots=True)
class Fetch(Command):
    uid: bool = False
    seqs: SequenceSet = field(default_factory=lambda: SequenceSet(()))
    atts: tuple[FetchAtt, ...] = ()
    changed_since: int | None = None
    vanished: bool = False  # RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE n VANISHED)


StoreMode = Literal["add", "remove", "replace"]  # STORE FLAGS, +FLAGS, -FLAGS (RFC 9051 §6.4.6)


@dataclass(slots=True)
class Store(Command):
    uid: bool = False
    seqs: SequenceSet = field(default_factory=lambda: SequenceSet(()))
    mode: StoreMode = "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchanged_since: int | None = None


@dataclass(slots=True)
class Copy(Command):
    """COPY and MOVE (RFC 6851)."""

    uid: bool = False
    seqs: SequenceSet = field(default_factory=lambda: SequenceSet(()))
    mailbox: str = ""


@dataclass(slots=True)
class UidExpunge(Command):
    seqs: SequenceSet = field(default_factory=lambda: SequenceSet(()))


@dataclass(slots=True)
class Compress(Command):
    mechanism: str = ""  # RFC 4978: DEFLATE is the only one defined


@dataclass(slots=True)
class GetQuota(Command):
    root: str = ""


@dataclass(slots=True)
class SetQuota(Command):
    root: str = ""


# ---- the reader ---------------------------------------------------------------------------------
class Reader:
    """Walks one command's octets. Every method raises ParseError on bad input, never anything else."""

    def __init__(self, data: bytes, *, utf8: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.utf8 = utf8
        self.depth = 0

    def error(self, message: str) -> ParseError:
        return ParseError(message)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def peek_upper(self, word: bytes) -> bool:
        return self.data[self.pos : self.pos + len(word)].upper() == word

    def at_end(self) -> bool:
        rest = self.data[self.pos :]
        return rest in (b"\r\n", b"\n", b"")

    def end(self) -> None:
        if not self.at_end():
            shown = self.data[self.pos : self.pos + 20].decode("ascii", "replace").rstrip("\r\n")
            raise self.error(f"unexpected characters at the end of the command: {shown!r}")

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise self.error("expected a space")
        self.pos += 1

    def expect(self, char: bytes) -> None:
        if self.data[self.pos : self.pos + len(char)] != char:
            raise self.error(f"expected {char.decode()!r}")
        self.pos += len(char)

    def maybe(self, char: bytes) -> bool:
        if self.data[self.pos : self.pos + len(char)] == char:
            self.pos += len(char)
            return True
        return False

    def _run(self, allowed: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        while self.pos < len(data) and data[self.pos] in allowed:
            self.pos += 1
        return data[start : self.pos]

    def atom(self) -> str:
        word = self._run(_ATOM_CHARS)
        if not word:
            raise self.error("expected an atom")
        return word.decode("ascii")

    def tag(self) -> str:
        word = self._run(_TAG_CHARS)
        if not word:
            raise self.error("expected a tag")
        return word.decode("ascii")

    def number(self, limit: int = MAX_NUMBER) -> int:
        digits = self._run(_DIGITS)
        if not digits:
            raise self.error("expected a number")
        if len(digits) > 20 or int(digits) > limit:
            raise self.error("number out of range")
        return int(digits)

    def nz_number(self, limit: int = MAX_NUMBER) -> int:
        value = self.number(limit)
        if value == 0:
            raise self.error("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise self.error("unterminated quoted string")
            c = data[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise self.error("bad escape in quoted string")
                out.append(data[self.pos])
                self.pos += 1
            elif c in (0x0D, 0x0A, 0x00):
                raise self.error("line end inside a quoted string")
            else:
                # 8-bit octets: UTF-8 in quoted strings is IMAP4rev2 (RFC 9051 §4.3) and RFC 6855
                out.append(c)

    def literal(self, *, allow8: bool = False) -> bytes:
        binary = self.maybe(b"~")
        if binary and not allow8:
            raise self.error("literal8 is not allowed here")
        self.expect(b"{")
        size = self.number()
        self.maybe(b"+")
        self.expect(b"}")
        self.maybe(b"\r")
        self.expect(b"\n")
        if self.pos + size > len(self.data):
            raise self.error("literal shorter than announced")
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        if not binary and b"\x00" in value:
            raise self.error("NUL in a literal (RFC 9051 §4.3)")
        return value

    def _string_start(self) -> bool:
        """A quoted string or a literal starts here ("~" alone is an ordinary atom character)."""
        c = self.peek()
        return c in (0x22, 0x7B) or (c == 0x7E and self.data[self.pos + 1 : self.pos + 2] == b"{")

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if self._string_start():
            return self.literal()
        raise self.error("expected a string")

    def astring(self) -> bytes:
        if self._string_start():
            return self.string()
        word = self._run(_ASTRING_CHARS)
        if not word:
            raise self.error("expected an atom or a string")
        return word

    def text_astring(self) -> str:
        if self._string_start():
            return _utf8(self.string(), self)
        word = self._run(_TEXT_ASTRING_CHARS)
        if not word:
            raise self.error("expected an atom or a string")
        return _utf8(word, self)

    def nstring(self) -> bytes | None:
        if self.peek_upper(b"NIL") and self._is_word_end(3):
            self.pos += 3
            return None
        return self.string()

    def _is_word_end(self, length: int) -> bool:
        nxt = self.data[self.pos + length : self.pos + length + 1]
        return nxt == b"" or nxt[0] not in _ASTRING_CHARS

    def mailbox(self) -> str:
        return decode_mailbox(self.astring(), self.utf8, self)

    def list_mailbox(self) -> str:
        quoted = self._string_start()
        raw = self.string() if quoted else self._run(_LIST_CHARS)
        if not quoted and not raw:
            raise self.error("expected a mailbox pattern")
        return decode_mailbox(raw, self.utf8, self)

    def sequence_set(self) -> SequenceSet:
        if self.maybe(b"$"):
            # RFC 5182 §3: seq-last-command = "$", a whole sequence set on its own
            if self.peek() != -1 and self.peek() not in b" \r\n)":
                raise self.error("$ is a sequence set on its own (RFC 5182)")
            return SequenceSet((), saved=True)
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            low = self._seq_number()
            high = low
            if self.maybe(b":"):
                high = self._seq_number()
            ranges.append((low, high))
            if not self.maybe(b","):
                break
        if self.peek() != -1 and self.peek() not in b" \r\n)":
            raise self.error("bad sequence set")
        return SequenceSet(tuple(ranges))

    def _seq_number(self) -> int | None:
        if self.maybe(b"*"):
            return None
        if self.peek() == ord("$"):
            raise self.error("$ is a sequence set on its own (RFC 5182)")
        return self.nz_number()

    def flag(self) -> str:
        if self.maybe(b"\\"):
            if self.maybe(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        while not self.maybe(b")"):
            if flags:
                self.sp()
            flags.append(self.flag())
        return tuple(flags)

    def date(self) -> date:
        quoted = self.maybe(b'"')
        day = self._digits(1, 2)
        self.expect(b"-")
        month = self._month()
        self.expect(b"-")
        year = self._digits(4, 4)
        if quoted:
            self.expect(b'"')
        try:
            return date(year, month, day)
        except ValueError:
            raise self.error("invalid date") from None

    def date_time(self) -> datetime:
        self.expect(b'"')
        self.maybe(b" ")
        day = self._digits(1, 2)
        self.expect(b"-")
        month = self._month()
        self.expect(b"-")
        year = self._digits(4, 4)
        self.sp()
        hour = self._digits(2, 2)
        self.expect(b":")
        minute = self._digits(2, 2)
        self.expect(b":")
        second = self._digits(2, 2)
        self.sp()
        sign = self.peek()
        if sign not in (ord("+"), ord("-")):
            raise self.error("expected a time zone")
        self.pos += 1
        zone = self._digits(4, 4)
        self.expect(b'"')
        offset = timedelta(hours=zone // 100, minutes=zone % 100)
        if zone % 100 >= 60 or zone // 100 > 23:
            raise self.error("invalid time zone")
        try:
            return datetime(
                year, month, day, hour, minute, second, tzinfo=timezone(-offset if sign == ord("-") else offset)
            )
        except ValueError:
            raise self.error("invalid date-time") from None

    def _digits(self, low: int, high: int) -> int:
        digits = self._run(_DIGITS)
        if not low <= len(digits) <= high:
            raise self.error("invalid date")
        return int(digits)

    def _month(self) -> int:
        word = self.data[self.pos : self.pos + 3].upper()
        try:
            month = _MONTHS.index(word.decode("ascii")) + 1
        except (ValueError, UnicodeDecodeError):
            raise self.error("invalid month") from None
        self.pos += 3
        return month

    def paren_atoms(self) -> tuple[str, ...]:
        """``"(" [atom *(SP atom)] ")"`` upper-cased."""
        self.expect(b"(")
        items: list[str] = []
        while not self.maybe(b")"):
            if items:
                self.sp()
            items.append(self.atom().upper())
        return tuple(items)


def _utf8(raw: bytes, reader: Reader | None = None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if reader is not None:
            raise reader.error("string is not valid UTF-8") from None
        raise


def decode_mailbox(raw: bytes, utf8: bool, reader: Reader | None = None) -> str:
    """A mailbox name from the wire: UTF-8 after ENABLE UTF8=ACCEPT (RFC 6855 §3), else modified UTF-7
    (RFC 3501 §5.1.3); 8-bit names from clients that send raw UTF-8 anyway are taken as UTF-8."""
    if utf8 or not raw.isascii():
        return _utf8(raw, reader)
    text = raw.decode("ascii")
    if "&" not in text:
        return text
    try:
        return mutf7.decode(text)
    except ValueError:
        return text  # not valid modified UTF-7: take the name as it is (Dovecot does the same)


# ---- commands -----------------------------------------------------------------------------------
def read_tag(data: bytes) -> str | None:
    """The tag of a (possibly malformed) command, for the BAD answer."""
    reader = Reader(data)
    try:
        tag = reader.tag()
        reader.sp()
    except ParseError:
        return None
    return tag


def command_name(data: bytes) -> str | None:
    """The upper-cased command name (``UID FETCH`` as ``UID``) from the start of a command."""
    reader = Reader(data)
    try:
        reader.tag()
        reader.sp()
        return reader.atom().upper()
    except ParseError:
        return None


def parse_command(data: bytes, *, utf8: bool = False) -> Command:
    reader = Reader(data, utf8=utf8)
    try:
        tag = reader.tag()
    except ParseError as exc:
        raise ParseError("missing or invalid tag") from exc
    try:
        reader.sp()
        name = reader.atom().upper()
        command = _dispatch(reader, tag, name)
        reader.end()
    except ParseError as exc:
        exc.tag = tag
        raise
    except RecursionError:
        raise ParseError("command nested too deeply", tag) from None
    return command


_SIMPLE = frozenset(
    ("CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "IDLE", "NAMESPACE", "EXPUNGE")
)


def _dispatch(r: Reader, tag: str, name: str) -> Command:
    if name in _SIMPLE:
        return Simple(tag, name)
    if name == "UID":
        r.sp()
        sub = r.atom().upper()
        r.sp()
        if sub in ("FETCH", "SEARCH", "STORE", "COPY", "MOVE", "SORT", "THREAD"):
            return _parse(r, tag, sub, uid=True)
        if sub == "EXPUNGE":
            return UidExpunge(tag, "UID EXPUNGE", r.sequence_set())
        raise ParseError(f"unknown UID command {sub}")
    if name in _PARSERS:
        if name not in ("ID",):
            r.sp()
        return _parse(r, tag, name, uid=False)
    raise ParseError(f"unknown command {name[:30]}")


def _parse(r: Reader, tag: str, name: str, *, uid: bool) -> Command:
    return _PARSERS[name](r, tag, name, uid)


def _login(r: Reader, tag: str, name: str, uid: bool) -> Command:
    user = r.text_astring()
    r.sp()
    return Login(tag, name, user, r.text_astring())


def _authenticate(r: Reader, tag: str, name: str, uid: bool) -> Command:
    mechanism = r.atom().upper()
    initial = None
    if r.maybe(b" "):
        if r.maybe(b"="):
            initial = b""
        else:
            token = r._run(frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))
            try:
                initial = base64.b64decode(token, validate=True)
            except (binascii.Error, ValueError):
                raise ParseError("invalid base64 initial response") from None
    return Authenticate(tag, name, mechanism, initial)


def _enable(r: Reader, tag: str, name: str, uid: bool) -> Command:
    caps = [r.atom().upper()]
    while r.maybe(b" "):
        caps.append(r.atom().upper())
    return Enable(tag, name, tuple(caps))


def _id(r: Reader, tag: str, name: str, uid: bool) -> Command:
    if r.at_end():  # some clients send a bare "ID"
        return Id(tag, name, None)
    r.sp()
    if r.peek_upper(b"NIL"):
        r.pos += 3
        return Id(tag, name, None)
    r.expect(b"(")
    params: dict[str, str | None] = {}
    while not r.maybe(b")"):
        if params:
            r.sp()
        key = r.string().decode("utf-8", "replace")[:64]
        r.sp()
        value = r.nstring()
        if len(params) < 30:
            params[key] = None if value is None else value.decode("utf-8", "replace")[:1024]
    return Id(tag, name, params)


def _select(r: Reader, tag: str, name: str, uid: bool) -> Command:
    mailbox = r.mailbox()
    condstore = False
    qresync = None
    if r.maybe(b" "):
        r.expect(b"(")
        first = True
        while not r.maybe(b")"):
            if not first:
                r.sp()
            first = False
            param = r.atom().upper()
            if param == "CONDSTORE":
                condstore = True
            elif param == "QRESYNC":
                r.sp()
                qresync = _qresync_params(r)
            else:
                raise ParseError(f"unknown SELECT parameter {param[:30]}")
    return Select(tag, name, mailbox, readonly=name == "EXAMINE", condstore=condstore, qresync=qresync)


def _qresync_params(r: Reader) -> QresyncParams:
    """RFC 7162 §7: "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"."""
    r.expect(b"(")
    uidvalidity = r.nz_number()
    r.sp()
    modseq = r.nz_number(MAX_MODSEQ)
    known = None
    seq_match = None
    if r.maybe(b" "):
        if r.peek() == ord("("):
            seq_match = _seq_match(r)
        else:
            known = _starless_set(r)
            if r.maybe(b" "):
                seq_match = _seq_match(r)
    r.expect(b")")
    return QresyncParams(uidvalidity, modseq, known, seq_match)


def _seq_match(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    """RFC 7162 §3.2.5.2: "(" known-sequence-set SP known-uid-set ")", a UID for each sequence number."""
    r.expect(b"(")
    seqs = _starless_set(r)
    r.sp()
    uids = _starless_set(r)
    r.expect(b")")
    if _count(seqs) != _count(uids):
        raise r.error("the QRESYNC sequence match data does not pair sequence numbers with UIDs")
    return seqs, uids


def _starless_set(r: Reader) -> SequenceSet:
    seqs = r.sequence_set()
    if any(n is None for pair in seqs.ranges for n in pair):
        raise r.error('"*" is not allowed here')  # RFC 7162 §7: known-uids and seq-match-data
    return seqs


def _count(seqs: SequenceSet) -> int:
    """How many numbers a set without "*" names (ranges counted, never expanded)."""
    return sum(abs((high or 0) - (low or 0)) + 1 for low, high in seqs.ranges)


def _create(r: Reader, tag: str, name: str, uid: bool) -> Command:
    mailbox = r.mailbox()
    special = None
    if r.maybe(b" "):
        # RFC 6154 §3: CREATE mailbox (USE (\Sent))
        r.expect(b"(")
        if r.atom().upper() != "USE":
            raise ParseError("expected USE")
        r.sp()
        uses = r.flag_list()
        r.expect(b")")
        if len(uses) > 1:
            raise ParseError("only one special use per mailbox", code="USEATTR")
        special = uses[0] if uses else None
    return Create(tag, name, mailbox, special)


def _mailbox_only(r: Reader, tag: str, name: str, uid: bool) -> Command:
    return MailboxCommand(tag, name, r.mailbox())


def _rename(r: Reader, tag: str, name: str, uid: bool) -> Command:
    old = r.mailbox()
    r.sp()
    return Rename(tag, name, old, r.mailbox())


_SELECT_OPTS = frozenset(("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"))
_RETURN_OPTS = frozenset(("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"))


def _list(r: Reader, tag: str, name: str, uid: bool) -> Command:
    select_opts: set[str] = set()
    extended = False
    if name == "LIST" and r.peek() == ord("("):
        extended = True
        select_opts = set(r.paren_atoms())
        unknown = select_opts - _SELECT_OPTS
        if unknown:
            raise ParseError(f"unknown LIST selection option {sorted(unknown)[0][:30]}")
        if "RECURSIVEMATCH" in select_opts and not select_opts & {"SUBSCRIBED"}:
            raise ParseError("RECURSIVEMATCH needs another selection option (RFC 5258 §3)")
        r.sp()
    reference = r.mailbox()
    r.sp()
    patterns: list[str] = []
    if name == "LIST" and r.peek() == ord("("):
        extended = True
        r.expect(b"(")
        while not r.maybe(b")"):
            if patterns:
                r.sp()
            patterns.append(r.list_mailbox())
        if not patterns:
            raise ParseError("empty pattern list")
    else:
        patterns.append(r.list_mailbox())
    return_opts: set[str] = set()
    status_items: tuple[str, ...] = ()
    if name == "LIST" and r.maybe(b" "):
        extended = True
        if r.atom().upper() != "RETURN":
            raise ParseError("expected RETURN")
        r.sp()
        r.expect(b"(")
        while not r.maybe(b")"):
            if return_opts:
                r.sp()
            opt = r.atom().upper()
            if opt not in _RETURN_OPTS:
                raise ParseError(f"unknown LIST return option {opt[:30]}")
            if opt == "STATUS":
                r.sp()
                status_items = _status_items(r)
            return_opts.add(opt)
    return ListCommand(
        tag, name, reference, tuple(patterns), frozenset(select_opts), frozenset(return_opts), status_items, extended
    )


STATUS_ITEMS = frozenset(
    (
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "MAILBOXID",  # RFC 8474 §4.3
    )
)


def _status_items(r: Reader) -> tuple[str, ...]:
    items = r.paren_atoms()
    if not items:
        raise ParseError("no status items")
    for item in items:
        if item not in STATUS_ITEMS:
            raise ParseError(f"unknown status item {item[:30]}")
    return items


def _status(r: Reader, tag: str, name: str, uid: bool) -> Command:
    mailbox = r.mailbox()
    r.sp()
    return Status(tag, name, mailbox, _status_items(r))


def _append(r: Reader, tag: str, name: str, uid: bool) -> Command:
    mailbox = r.mailbox()
    r.sp()
    flags: tuple[str, ...] = ()
    when = None
    if r.peek() == ord("("):
        flags = r.flag_list()
        r.sp()
    if r.peek() == ord('"'):
        when = r.date_time()
        r.sp()
    if r.peek_upper(b"UTF8 "):
        # RFC 6855 §4: APPEND ... UTF8 (~{n}...)
        r.pos += 5
        r.expect(b"(")
        message = r.literal(allow8=True)
        r.expect(b")")
    else:
        # RFC 9051 §6.3.12 / RFC 3516: literal or literal8
        message = r.literal(allow8=True)
    return Append(tag, name, mailbox, flags, when, message)


def _getquota(r: Reader, tag: str, name: str, uid: bool) -> Command:
    return GetQuota(tag, name, r.text_astring())


def _setquota(r: Reader, tag: str, name: str, uid: bool) -> Command:
    root = r.text_astring()
    r.sp()
    r.expect(b"(")
    depth = 1
    while depth and r.pos < len(r.data):  # the resource list is not used: SETQUOTA is refused
        depth += {0x28: 1, 0x29: -1}.get(r.data[r.pos], 0)
        r.pos += 1
    return SetQuota(tag, name, root)


# ---- SEARCH -------------------------------------------------------------------------------------
# RFC 4731 ESEARCH; RFC 5182 SAVE; RFC 5267 adds PARTIAL, UPDATE (keep a search context) and CONTEXT (a hint only)
_RETURN_ESEARCH = frozenset(("MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL", "UPDATE", "CONTEXT"))


def _search(r: Reader, tag: str, name: str, uid: bool) -> Command:
    returns: tuple[str, ...] | None = None
    partial = None
    charset = None
    if r.peek_upper(b"RETURN "):
        r.pos += 7
        returns, partial = _return_opts(r, "SEARCH")
        r.sp()
    if r.peek_upper(b"CHARSET "):
        r.pos += 8
        charset = r.astring().decode("ascii", "replace").upper()
        r.sp()
    return Search(tag, "SEARCH", uid, charset, _search_program(r), returns, partial)


def _search_program(r: Reader) -> sk.SearchKey:
    keys = [_search_key(r)]
    while r.maybe(b" "):
        keys.append(_search_key(r))
    return keys[0] if len(keys) == 1 else sk.And(tuple(keys))


def _return_opts(r: Reader, command: str) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    """RFC 4731 / RFC 5267 RETURN options: ``(MIN MAX ALL COUNT PARTIAL n:m ...)``."""
    r.expect(b"(")
    opts: list[str] = []
    partial = None
    while not r.maybe(b")"):
        if opts:
            r.sp()
        opt = r.atom().upper()
        if opt not in _RETURN_ESEARCH:
            raise ParseError(f"unsupported {command} RETURN option {opt[:30]}")
        if opt == "PARTIAL":
            # RFC 5267 §4.4: partial-range = nz-number ":" nz-number, either way round
            r.sp()
            low = r.nz_number()
            r.expect(b":")
            high = r.nz_number()
            partial = (min(low, high), max(low, high))
        opts.append(opt)
    return tuple(opts), partial


# ---- SORT and THREAD (RFC 5256 §3) ---------------------------------------------------------------
_THREAD_ALGORITHMS = frozenset(("ORDEREDSUBJECT", "REFERENCES"))


def _sort(r: Reader, tag: str, name: str, uid: bool) -> Command:
    returns: tuple[str, ...] | None = None
    partial = None
    if r.peek_upper(b"RETURN "):
        # RFC 5267 §3: SORT RETURN (...) (criteria) charset keys
        r.pos += 7
        returns, partial = _return_opts(r, "SORT")
        r.sp()
    r.expect(b"(")
    criteria: list[SortCriterion] = []
    while not r.maybe(b")"):
        if criteria:
            r.sp()
        word = r.atom().upper()
        reverse = word == "REVERSE"
        if reverse:
            r.sp()
            word = r.atom().upper()
        field_name = word.lower()
        if field_name not in SORT_FIELDS:
            raise ParseError(f"unknown sort key {word[:30]}")
        criteria.append(SortCriterion(cast(SortField, field_name), reverse))
    if not criteria:
        raise ParseError("empty sort criteria")
    r.sp()
    charset = _charset(r)
    r.sp()
    return Sort(tag, "SORT", uid, tuple(criteria), charset, _search_program(r), returns, partial)


def _thread(r: Reader, tag: str, name: str, uid: bool) -> Command:
    algorithm = r.atom().upper()
    if algorithm not in _THREAD_ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algorithm[:30]}")
    r.sp()
    charset = _charset(r)
    r.sp()
    return Thread(tag, "THREAD", uid, algorithm, charset, _search_program(r))


def _cancelupdate(r: Reader, tag: str, name: str, uid: bool) -> Command:
    # RFC 5267 §4.2: cancelupdate = "CANCELUPDATE" 1*(SP quoted)
    tags = [_utf8(r.quoted(), r)]
    while r.maybe(b" "):
        tags.append(_utf8(r.quoted(), r))
    return CancelUpdate(tag, name, tuple(tags))


def _charset(r: Reader) -> str:
    return r.astring().decode("ascii", "replace").upper()


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", False),
    "UNANSWERED": ("\\Answered", True),
    "UNDELETED": ("\\Deleted", True),
    "UNDRAFT": ("\\Draft", True),
    "UNFLAGGED": ("\\Flagged", True),
    "UNSEEN": ("\\Seen", True),
}
_TEXT_KEYS = {
    "BCC": "bcc",
    "BODY": "body",
    "CC": "cc",
    "FROM": "from",
    "SUBJECT": "subject",
    "TEXT": "text",
    "TO": "to",
}
_DATE_KEYS = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
}


def _search_key(r: Reader) -> sk.SearchKey:
    r.depth += 1
    if r.depth > MAX_DEPTH:
        raise ParseError("search program nested too deeply")
    try:
        return _search_key_inner(r)
    finally:
        r.depth -= 1


def _search_key_inner(r: Reader) -> sk.SearchKey:
    c = r.peek()
    if c == ord("("):
        r.pos += 1
        keys = [_search_key(r)]
        while r.maybe(b" "):
            keys.append(_search_key(r))
        r.expect(b")")
        return keys[0] if len(keys) == 1 else sk.And(tuple(keys))
    if c in (ord("*"), ord("$")) or c in _DIGITS:
        return SeqSetKey(r.sequence_set())
    word = r.atom().upper()
    if word == "ALL":
        return sk.All()
    if word in _FLAG_KEYS:
        flag, negate = _FLAG_KEYS[word]
        key: sk.SearchKey = sk.HasFlag(flag)
        return sk.Not(key) if negate else key
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        key = sk.HasFlag(r.atom())
        return sk.Not(key) if word == "UNKEYWORD" else key
    if word in _TEXT_KEYS:
        r.sp()
        return sk.Text(_TEXT_KEYS[word], r.text_astring())  # type: ignore[arg-type]
    if word in _DATE_KEYS:
        r.sp()
        which, op = _DATE_KEYS[word]
        return sk.DateKey(which, op, r.date())  # type: ignore[arg-type]
    if word == "HEADER":
        r.sp()
        field_name = r.text_astring()
        r.sp()
        return sk.Header(field_name, r.text_astring())
    if word in ("LARGER", "SMALLER"):
        r.sp()
        return sk.Size("larger" if word == "LARGER" else "smaller", r.number())
    if word in ("OLDER", "YOUNGER"):
        # RFC 5032 §4: OLDER / YOUNGER interval, a number of seconds, at least 1
        r.sp()
        return sk.Age("older" if word == "OLDER" else "younger", r.nz_number())
    if word == "NOT":
        r.sp()
        return sk.Not(_search_key(r))
    if word == "OR":
        r.sp()
        left = _search_key(r)
        r.sp()
        return sk.Or(left, _search_key(r))
    if word == "UID":
        r.sp()
        return UidSetKey(r.sequence_set())
    if word == "RECENT":
        return RecentKey()
    if word == "NEW":
        return sk.And((RecentKey(), sk.Not(sk.HasFlag("\\Seen"))))
    if word == "OLD":
        return sk.Not(RecentKey())
    if word in ("EMAILID", "THREADID"):
        # RFC 8474 §6; without threads, THREADID matches nothing (§5.2): an empty UID set
        r.sp()
        object_id = _object_id(r)
        return sk.EmailId(object_id) if word == "EMAILID" else sk.UidSet(())
    if word == "MODSEQ":
        # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer
        r.sp()
        if r.peek() == ord('"'):
            r.quoted()
            r.sp()
            kind = r.atom().lower()
            if kind not in ("priv", "shared", "all"):
                raise ParseError("bad MODSEQ entry type")
            r.sp()
        return sk.ModSeq(r.number(MAX_MODSEQ))
    raise ParseError(f"unknown search key {word[:30]}")


_OBJECT_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _object_id(r: Reader) -> str:
    """RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")."""
    value = r._run(_OBJECT_ID_CHARS)
    if not value or len(value) > 255 or (r.peek() != -1 and r.peek() not in b" \r\n)"):
        raise ParseError("bad object id (RFC 8474)")
    return value.decode("ascii")


# ---- FETCH --------------------------------------------------------------------------------------
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_PLAIN_ATTS = frozenset(
    (
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
        "EMAILID",  # RFC 8474 §5
        "THREADID",
    )
)


def _fetch(r: Reader, tag: str, name: str, uid: bool) -> Command:
    seqs = r.sequence_set()
    r.sp()
    atts: list[FetchAtt] = []
    if r.peek() == ord("("):
        r.pos += 1
        while not r.maybe(b")"):
            if atts:
                r.sp()
            atts.append(_fetch_att(r))
        if not atts:
            raise ParseError("empty fetch attribute list")
    else:
        word_start = r.pos
        word = r._run(frozenset(c for c in _ATOM_CHARS if c != ord("["))).decode().upper()
        if word in _MACROS:
            atts = [FetchAtt(k) for k in _MACROS[word]]
        else:
            r.pos = word_start
            atts.append(_fetch_att(r))
    changed_since = None
    vanished = False
    if r.maybe(b" "):
        # RFC 7162 §3.1.4: FETCH ... (CHANGEDSINCE n); §3.2.6: UID FETCH ... (CHANGEDSINCE n VANISHED)
        r.expect(b"(")
        first = True
        while not r.maybe(b")"):
            if not first:
                r.sp()
            first = False
            modifier = r.atom().upper()
            if modifier == "CHANGEDSINCE":
                r.sp()
                changed_since = r.number(MAX_MODSEQ)
            elif modifier == "VANISHED":
                vanished = True
            else:
                raise ParseError(f"unknown FETCH modifier {modifier[:30]}")
        if vanished and not uid:
            raise ParseError("VANISHED is only allowed in UID FETCH")
        if vanished and changed_since is None:
            raise ParseError("VANISHED needs CHANGEDSINCE")
    return Fetch(tag, "FETCH", uid, seqs, tuple(atts), changed_since, vanished)


def _fetch_att(r: Reader) -> FetchAtt:
    word = r._run(frozenset(c for c in _ATOM_CHARS if c not in b"[<")).decode().upper()
    if word in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE") and r.peek() == ord("["):
        binary = word.startswith("BINARY")
        r.pos += 1
        if binary:
            section = _binary_part(r)
            echo = section
        else:
            section, echo = _section(r)
        r.expect(b"]")
        partial = None
        if r.peek() == ord("<") and word != "BINARY.SIZE":
            r.pos += 1
            start = r.number()
            r.expect(b".")
            length = r.nz_number()
            r.expect(b">")
            partial = (start, length)
        kind = "BINARY.SIZE" if word == "BINARY.SIZE" else ("BINARY[" if binary else "BODY[")
        return FetchAtt(kind, section, echo, partial, peek=word.endswith(".PEEK"))
    if word in _PLAIN_ATTS:
        return FetchAtt(word)
    if word == "PREVIEW":
        return FetchAtt(word, lazy=_preview_modifiers(r))
    raise ParseError(f"unknown fetch attribute {word[:30]}")


def _preview_modifiers(r: Reader) -> bool:
    """RFC 8970 §6: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"], preview-mod = "LAZY". A list
    that does not start with a preview modifier is left alone: it may be FETCH's own (CHANGEDSINCE n)."""
    if not r.data.startswith(b" (", r.pos):
        return False
    start = r.pos
    r.pos += 2
    word = r._run(_ATOM_CHARS).decode().upper()
    if word != "LAZY":
        r.pos = start
        return False
    while r.maybe(b" "):
        word = r.atom().upper()
        if word != "LAZY":
            raise ParseError(f"unknown PREVIEW modifier {word[:30]}")
    r.expect(b")")
    return True


def _binary_part(r: Reader) -> str:
    parts: list[str] = []
    while r.peek() in _DIGITS:
        parts.append(str(r.nz_number()))
        if not r.maybe(b"."):
            break
    return ".".join(parts)


def _section(r: Reader) -> tuple[str, str]:
    """RFC 9051 §9 section-spec, as the store's section string and the echo for the response."""
    parts: list[str] = []
    while r.peek() in _DIGITS:
        parts.append(str(r.nz_number()))
        if not r.maybe(b"."):
            break
        if r.peek() not in _DIGITS:
            break
    text = ""
    if r.peek() != ord("]"):
        text = r._run(frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")).decode().upper()
        allowed = {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"} | ({"MIME"} if parts else set())
        if text not in allowed:
            raise ParseError(f"bad section {text[:30]}")
    elif parts and r.data[r.pos - 1] == ord("."):
        raise ParseError("bad section")
    prefix = ".".join(parts)
    spec = f"{prefix}.{text}" if prefix and text else prefix or text
    if text.startswith("HEADER.FIELDS"):
        r.sp()
        r.expect(b"(")
        names: list[str] = []
        while not r.maybe(b")"):
            if names:
                r.sp()
            raw = r.astring()
            try:
                field_name = raw.decode("ascii")
            except UnicodeDecodeError:
                raise ParseError("header field names are ASCII") from None
            if not field_name or any(ch in field_name for ch in ": \t"):
                raise ParseError("bad header field name")
            names.append(field_name)
        if not names:
            raise ParseError("empty header list")
        spec_names = " ".join(n.upper() for n in names)
        return f"{spec} ({spec_names})", f"{spec} ({' '.join(names)})"
    return spec, spec


# ---- STORE, COPY, MOVE --------------------------------------------------------------------------
def _store(r: Reader, tag: str, name: str, uid: bool) -> Command:
    seqs = r.sequence_set()
    r.sp()
    unchanged_since = None
    if r.peek() == ord("("):
        # RFC 7162 §3.1.3: STORE seq (UNCHANGEDSINCE n) ...
        r.pos += 1
        modifier = r.atom().upper()
        if modifier != "UNCHANGEDSINCE":
            raise ParseError(f"unknown STORE modifier {modifier[:30]}")
        r.sp()
        unchanged_since = r.number(MAX_MODSEQ)
        r.expect(b")")
        r.sp()
    mode: StoreMode = "replace"
    if r.maybe(b"+"):
        mode = "add"
    elif r.maybe(b"-"):
        mode = "remove"
    item = r.atom().upper()
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise ParseError(f"unknown STORE item {item[:30]}")
    r.sp()
    if r.peek() == ord("("):
        flags = r.flag_list()
    else:
        flags_list = [r.flag()]
        while r.maybe(b" "):
            flags_list.append(r.flag())
        flags = tuple(flags_list)
    return Store(tag, "STORE", uid, seqs, mode, item.endswith(".SILENT"), flags, unchanged_since)


def _compress(r: Reader, tag: str, name: str, uid: bool) -> Command:
    return Compress(tag, name, r.atom().upper())


def _copy(r: Reader, tag: str, name: str, uid: bool) -> Command:
    seqs = r.sequence_set()
    r.sp()
    return Copy(tag, name, uid, seqs, r.mailbox())


_PARSERS = {
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ENABLE": _enable,
    "ID": _id,
    "SELECT": _select,
    "EXAMINE": _select,
    "CREATE": _create,
    "DELETE": _mailbox_only,
    "SUBSCRIBE": _mailbox_only,
    "UNSUBSCRIBE": _mailbox_only,
    "GETQUOTAROOT": _mailbox_only,
    "GETQUOTA": _getquota,
    "SETQUOTA": _setquota,
    "RENAME": _rename,
    "LIST": _list,
    "LSUB": _list,
    "STATUS": _status,
    "APPEND": _append,
    "SEARCH": _search,
    "SORT": _sort,
    "THREAD": _thread,
    "CANCELUPDATE": _cancelupdate,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": _copy,
    "COMPRESS": _compress,
}


def literal_announcement(line: bytes) -> tuple[int, bool, bool] | None:
    """``(size, synchronizing, binary)`` when ``line`` ends with a literal announcement, else None.

    RFC 9051 §4.3 / RFC 7888: ``{n}`` waits for "+ ", ``{n+}`` does not; ``~{n}`` is literal8.
    """
    end = line.rstrip(b"\r\n")
    if not end.endswith(b"}"):
        return None
    start = end.rfind(b"{")
    if start < 0:
        return None
    inner = end[start + 1 : -1]
    sync = True
    if inner.endswith(b"+"):
        sync, inner = False, inner[:-1]
    if not inner.isdigit() or len(inner) > 20:
        return None
    binary = start > 0 and end[start - 1 : start] == b"~"
    return int(inner), sync, binary


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
