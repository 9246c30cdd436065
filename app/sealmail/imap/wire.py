"""IMAP wire forms of data values (RFC 9051 §4): NIL, numbers, strings, parenthesised lists.

``imap_serialize`` writes the nested values ``sealmail.mime`` produces for BODYSTRUCTURE,
BODY and ENVELOPE (and any other FETCH data of that shape):

* ``None`` → ``NIL``; ``int`` → decimal; ``list``/``tuple`` → ``(a b c)``, except that the leading
  list items of an :class:`~sealmail.mime.imap.Adjacent` list are not separated (``1*body``,
  ``1*address`` in RFC 9051 §9);
* ``str``/``bytes`` → a quoted string when it is short and safe, else a literal ``{n}\\r\\n...``.

8-bit text goes as a literal unless the client enabled UTF8=ACCEPT (RFC 6855 §3: then UTF-8 may be
quoted); CR, LF and NUL always force a literal (RFC 9051 §4.3). A NUL cannot be sent in a plain literal:
the caller must use ``literal8`` where the grammar allows it (BINARY), so here it is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sealmail.imap import mutf7
from sealmail.mime.imap import Adjacent

MAX_QUOTED = 1024  # longer strings go as literals: easier on clients' line buffers


def imap_serialize(value: Any, *, utf8: bool = False) -> bytes:
    """The wire octets of a nested value; ``utf8=True`` once the client has ENABLEd UTF8=ACCEPT."""
    out: list[bytes] = []
    _write(value, out, utf8)
    return b"".join(out)


def _write(value: Any, out: list[bytes], utf8: bool) -> None:
    if value is None:
        out.append(b"NIL")
    elif isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    elif isinstance(value, int):
        if value < 0:
            raise ValueError("IMAP numbers are unsigned")
        out.append(str(value).encode("ascii"))
    elif isinstance(value, (list, tuple)):
        out.append(b"(")
        adjacent = isinstance(value, Adjacent)
        for i, item in enumerate(value):
            if i and not (adjacent and isinstance(item, list) and isinstance(value[i - 1], list)):
                out.append(b" ")
            adjacent = adjacent and isinstance(item, list)
            _write(item, out, utf8)
        out.append(b")")
    elif isinstance(value, str):
        out.append(string(value.encode("utf-8", "surrogateescape"), utf8=utf8))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(string(bytes(value), utf8=utf8))
    else:
        raise TypeError(f"no IMAP form for {type(value).__name__}")


def string(data: bytes, *, utf8: bool = False) -> bytes:
    """One IMAP string: quoted (RFC 9051 §4.3 quoted) when possible, else a synchronising literal."""
    if b"\x00" in data:
        raise ValueError("NUL needs literal8 (RFC 3516), which this grammar position does not allow")
    if len(data) <= MAX_QUOTED and not any(c in data for c in (b"\r", b"\n")) and _quotable(data, utf8):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def _quotable(data: bytes, utf8: bool) -> bool:
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---- response pieces the session writes (flags, names, dates, sets, message data) -------------------
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """``{n}`` + octets; ``~{n}`` (literal8, RFC 3516) where the grammar allows NUL (BINARY)."""
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def quoted(text: str) -> bytes:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + text.encode("utf-8") + b'"'


def serialize(value: Any, utf8: bool = False) -> bytes:
    """``imap_serialize`` for FETCH's hot path (ENVELOPE, BODYSTRUCTURE of thousands of messages).

    Same forms, one difference: a NUL that a malformed message left in a header value is dropped
    instead of failing the whole FETCH (the value cannot travel otherwise, RFC 9051 §4.3).
    """
    return serialize_text(value, utf8).encode("utf-8", "surrogateescape")


def nstring(value: str | bytes | None, utf8: bool = False) -> bytes:
    return b"NIL" if value is None else serialize(value, utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name on the wire: modified UTF-7 (RFC 3501 §5.1.3) unless UTF8=ACCEPT is on (RFC 6855)."""
    if not utf8:
        name = mutf7.encode(name)
    return string(name.encode("utf-8"), utf8=utf8)


def date_time(value: datetime) -> bytes:
    """``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (RFC 9051 §9 date-time)."""
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"'
    ).encode("ascii")


def sequence_set(numbers: Iterable[int]) -> str:
    """Ascending numbers as a compact sequence set: 1:3,7,9:10 (empty input gives "")."""
    parts: list[str] = []
    start: int | None = None
    prev = 0
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
            start = prev = n
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


# ---- text forms for FETCH's metadata fast path: built as str, encoded once per chunk ----------------
def serialize_text(value: Any, utf8: bool = False) -> str:
    """``serialize`` producing text (raw octets carried as surrogate escapes); encode the result with
    ``encode("utf-8", "surrogateescape")``. Literal lengths count the octets that encoding gives."""
    out: list[str] = []
    _put_text(value, out, utf8)
    return "".join(out)


def _put_text(value: Any, out: list[str], utf8: bool) -> None:
    kind = type(value)
    if value is None:
        out.append("NIL")
    elif kind is str:
        if "\x00" in value:
            value = value.replace("\x00", "")
        if (
            len(value) <= MAX_QUOTED
            and (utf8 or value.isascii())
            and (value.isprintable() or ("\r" not in value and "\n" not in value))
        ):
            if "\\" in value or '"' in value:
                value = value.replace("\\", "\\\\").replace('"', '\\"')
            if utf8 and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:  # raw octets that are not UTF-8: a literal after all
                    _literal_text(value, out)
                    return
            out.append('"' + value + '"')
        else:
            _literal_text(value, out)
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        out.append("(")
        adjacent = isinstance(value, Adjacent)
        previous_list = False
        for i, item in enumerate(value):
            is_list = isinstance(item, list)
            if i and not (adjacent and is_list and previous_list):
                out.append(" ")
            adjacent = adjacent and is_list
            previous_list = is_list
            _put_text(item, out, utf8)
        out.append(")")
    elif kind is int:
        out.append(str(value))
    elif isinstance(value, bytes | bytearray | memoryview):
        _put_text(bytes(value).decode("utf-8", "surrogateescape"), out, utf8)
    else:
        raise TypeError(f"no IMAP form for {type(value).__name__}")


def _literal_text(value: str, out: list[str]) -> None:
    data = value.encode("utf-8", "surrogateescape").replace(b"\x00", b"")
    out.append(f"{{{len(data)}}}\r\n")
    out.append(data.decode("utf-8", "surrogateescape"))


_MONTH_NAMES = _MONTHS


@functools.lru_cache(maxsize=65536)
def date_time_text(value: datetime) -> str:
    """``date_time`` as text; the store keeps internal dates in UTC, the common case here."""
    offset = value.utcoffset()
    if not offset:
        return (
            f'"{value.day:02d}-{_MONTH_NAMES[value.month - 1]}-{value.year:04d} '
            f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} +0000"'
        )
    return date_time(value).decode("ascii")


def _field_text(value: Any, utf8: bool) -> str:
    if value is None:
        return "NIL"
    if type(value) is str and len(value) <= MAX_QUOTED and value.isascii() and value.isprintable():
        text: str = value
        if "\\" in text or '"' in text:
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + text + '"'
    return serialize_text(value, utf8)


def envelope_text(value: Any, utf8: bool = False) -> str:
    """``serialize_text`` for the fixed shape of an ENVELOPE (RFC 9051 §7.5.2): ten fields, six of them
    address lists of four-field addresses. Anything else goes the general way."""
    if type(value) is not list or len(value) != 10:
        return serialize_text(value, utf8)
    f = _field_text
    parts = [f(value[0], utf8), f(value[1], utf8)]
    for addresses in value[2:8]:
        if addresses is None:
            parts.append("NIL")
        elif isinstance(addresses, list) and all(type(a) is list and len(a) == 4 for a in addresses):
            joiner = "" if isinstance(addresses, Adjacent) else " "
            parts.append(
                "("
                + joiner.join([f"({f(a[0], utf8)} {f(a[1], utf8)} {f(a[2], utf8)} {f(a[3], utf8)})" for a in addresses])
                + ")"
            )
        else:
            parts.append(serialize_text(addresses, utf8))
    parts.append(f(value[8], utf8))
    parts.append(f(value[9], utf8))
    return "(" + " ".join(parts) + ")"
