"""Search programs over one folder, compiled to SQL.

The IMAP parser builds these keys (RFC 9051 §6.4.4); sequence-number sets are turned into UID
sets by the session first (only it knows its sequence numbers). String matching is substring and
case-insensitive: the trigram FTS5 index answers strings of three or more characters, shorter
ones scan the indexed text with LIKE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sealmail.timecodec import format_time

TextField = Literal["text", "body", "subject", "from", "to", "cc", "bcc"]
_FTS_COLUMNS: dict[str, str] = {
    "text": "{subject from_ to_ cc bcc headers body}",
    "body": "body",
    "subject": "subject",
    "from": "from_",
    "to": "to_",
    "cc": "cc",
    "bcc": "bcc",
}
_LIKE_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("subject", "from_", "to_", "cc", "bcc", "headers", "body"),
    "body": ("body",),
    "subject": ("subject",),
    "from": ("from_",),
    "to": ("to_",),
    "cc": ("cc",),
    "bcc": ("bcc",),
}


class SearchKey:
    """Base of every search key."""


@dataclass(frozen=True, slots=True)
class All(SearchKey):
    pass


@dataclass(frozen=True, slots=True)
class HasFlag(SearchKey):
    """A system flag (``\\Seen``...), ``\\Recent``, or a keyword."""

    flag: str


@dataclass(frozen=True, slots=True)
class Text(SearchKey):
    field: TextField
    value: str


@dataclass(frozen=True, slots=True)
class Header(SearchKey):
    """HEADER field-name string: the field exists and its value contains the string (empty: exists)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class DateKey(SearchKey):
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header).

    RFC 9051 §6.4.4: dates compare without time or timezone. Internal dates are kept, shown
    (INTERNALDATE ... +0000) and compared in UTC; a Date: header by the date its sender wrote.
    """

    which: Literal["internal", "sent"]
    op: Literal["before", "on", "since"]
    day: date


@dataclass(frozen=True, slots=True)
class Age(SearchKey):
    """WITHIN (RFC 5032 §2): OLDER n / YOUNGER n, an internal date more / less than n seconds before now.

    The two part a folder between them: OLDER takes a date exactly n seconds old, YOUNGER does not.
    """

    op: Literal["older", "younger"]
    seconds: int


@dataclass(frozen=True, slots=True)
class Size(SearchKey):
    op: Literal["larger", "smaller"]
    octets: int


@dataclass(frozen=True, slots=True)
class UidSet(SearchKey):
    """Inclusive ranges of UIDs; a range end of ``None`` means ``*`` (the largest UID in use)."""

    ranges: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class ModSeq(SearchKey):
    """MODSEQ n: messages with a mod-sequence of at least n (RFC 7162 §3.1.5)."""

    at_least: int


@dataclass(frozen=True, slots=True)
class EmailId(SearchKey):
    """EMAILID objectid (RFC 8474 §6): the messages whose body has this id."""

    object_id: str


@dataclass(frozen=True, slots=True)
class Not(SearchKey):
    key: SearchKey


@dataclass(frozen=True, slots=True)
class And(SearchKey):
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class Or(SearchKey):
    left: SearchKey
    right: SearchKey


def any_key(key: SearchKey, leaf: Callable[[SearchKey], bool]) -> bool:
    """Whether ``leaf`` holds for some key of a search program, looking through NOT, AND and OR."""
    if isinstance(key, Not):
        return any_key(key.key, leaf)
    if isinstance(key, And):
        return any(any_key(k, leaf) for k in key.keys)
    if isinstance(key, Or):
        return any_key(key.left, leaf) or any_key(key.right, leaf)
    return leaf(key)


SYSTEM_FLAG_BITS = {"\\seen": 1, "\\answered": 2, "\\flagged": 4, "\\deleted": 8, "\\draft": 16}


class Compiler:
    """Turns a key into a SQL condition on ``messages m`` (joined with ``bodies b``) and its parameters."""

    def __init__(self) -> None:
        self.params: list[object] = []

    def compile(self, key: SearchKey) -> str:
        method: Callable[[SearchKey], str] = getattr(self, f"_{type(key).__name__.lower()}")
        return method(key)

    def _p(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def _all(self, key: All) -> str:
        return "1"

    def _hasflag(self, key: HasFlag) -> str:
        name = key.flag.lower()
        if name in SYSTEM_FLAG_BITS:
            return f"(m.flags & {SYSTEM_FLAG_BITS[name]}) != 0"
        if name == "\\recent":
            return "m.recent != 0"
        return f"EXISTS (SELECT 1 FROM json_each(m.keywords) WHERE lower(value) = lower({self._p(key.flag)}))"

    def _text(self, key: Text) -> str:
        if len(key.value) >= 3:
            phrase = '"' + key.value.replace('"', '""') + '"'
            query = f"{_FTS_COLUMNS[key.field]} : {phrase}"
            return f"m.body_id IN (SELECT rowid FROM body_text WHERE body_text MATCH {self._p(query)})"
        if not key.value:
            return "1"
        pattern = "%" + key.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        mark = self._p(pattern)
        ors = " OR ".join(f"t.{c} LIKE {mark} ESCAPE '\\'" for c in _LIKE_COLUMNS[key.field])
        return f"m.body_id IN (SELECT t.rowid FROM body_text t WHERE {ors})"

    def _header(self, key: Header) -> str:
        return (
            f"header_contains((SELECT h.header FROM body_headers h WHERE h.id = m.body_id), "
            f"{self._p(key.name)}, {self._p(key.value)})"
        )

    def _datekey(self, key: DateKey) -> str:
        if key.which == "sent":
            # the Date: header's own calendar date ('YYYY-MM-DD' as written, whatever its zone)
            operator = {"before": "<", "on": "=", "since": ">="}[key.op]
            return f"b.sent_day {operator} {self._p(key.day.isoformat())}"
        column = "m.internal_date"
        start = _day_start(key.day)
        end = _day_start(key.day + timedelta(days=1))
        if key.op == "before":
            return f"{column} < {self._p(start)}"
        if key.op == "since":
            return f"{column} >= {self._p(start)}"
        return f"({column} >= {self._p(start)} AND {column} < {self._p(end)})"

    def _age(self, key: Age) -> str:
        cutoff = self._p(format_time(datetime.now(UTC) - timedelta(seconds=key.seconds)))
        return f"m.internal_date {'<=' if key.op == 'older' else '>'} {cutoff}"

    def _size(self, key: Size) -> str:
        return f"m.size {'>' if key.op == 'larger' else '<'} {self._p(key.octets)}"

    def _uidset(self, key: UidSet) -> str:
        parts = []
        for low, high in key.ranges:
            if high is None:
                # "n:*" includes the largest UID in use even when n is larger (RFC 9051 §9, seq-range)
                parts.append(
                    f"(m.uid >= {self._p(low)} OR m.uid = (SELECT max(uid) FROM messages WHERE folder_id = m.folder_id))"
                )
            else:
                lo, hi = min(low, high), max(low, high)
                parts.append(f"m.uid BETWEEN {self._p(lo)} AND {self._p(hi)}")
        return "(" + " OR ".join(parts) + ")" if parts else "0"

    def _modseq(self, key: ModSeq) -> str:
        return f"m.modseq >= {self._p(key.at_least)}"

    def _emailid(self, key: EmailId) -> str:
        return f"b.object_id = {self._p(key.object_id)}"

    def _not(self, key: Not) -> str:
        return f"NOT ({self.compile(key.key)})"

    def _and(self, key: And) -> str:
        if not key.keys:
            return "1"
        return "(" + " AND ".join(self.compile(k) for k in key.keys) + ")"

    def _or(self, key: Or) -> str:
        return f"(({self.compile(key.left)}) OR ({self.compile(key.right)}))"


def _day_start(day: date) -> str:
    return format_time(datetime.combine(day, time(0), UTC))


def header_contains(header: bytes | None, name: str, value: str) -> int:
    """SQL function: does the raw header block have field ``name`` whose unfolded value contains ``value``?"""
    if not header:
        return 0
    wanted = name.lower().encode("ascii", "replace")
    needle = value.lower()
    for field_name, field_value in _fields(header):
        if field_name.lower() == wanted and needle in _decode(field_value).lower():
            return 1
    return 0


def _fields(header: bytes) -> list[tuple[bytes, bytes]]:
    found: list[tuple[bytes, bytes]] = []
    for line in header.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and found:
            name, value = found[-1]
            found[-1] = (name, value + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            found.append((name.strip(), value.strip()))
    return found


def _decode(value: bytes) -> str:
    from email.header import decode_header, make_header

    text = value.decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # malformed encoded-words: match on the raw text
        return text
