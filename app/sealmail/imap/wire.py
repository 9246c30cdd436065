"""Serialising IMAP responses (RFC 9051 §4 data formats, §7 responses).

Nested values from the store (ENVELOPE, BODYSTRUCTURE) are lists, ``str``, ``int`` and ``None``
(NIL). Strings go out quoted when they are short printable ASCII — or printable UTF-8 once the
client enabled UTF8=ACCEPT (RFC 6855 §3) — and as literals otherwise: anything with CR, LF, other
controls or 8-bit octets for a client that did not ask for UTF-8 (RFC 9051 §4.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sealmail.imap import mutf7

MAX_QUOTED = 1024
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Atom(str):
    """Written as it is: flags, keywords, NIL, response codes."""

    __slots__ = ()


NIL = Atom("NIL")


def literal(data: bytes, *, binary: bool = False) -> bytes:
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def quoted(text: str) -> bytes:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + text.encode("utf-8") + b'"'


def string(value: str | bytes, utf8: bool = False) -> bytes:
    if isinstance(value, bytes):
        if len(value) <= MAX_QUOTED and value.isascii():
            text = value.decode("ascii")
            if text.isprintable():
                return quoted(text)
        return literal(value.replace(b"\x00", b""))
    if len(value) <= MAX_QUOTED and value.isprintable() and (utf8 or value.isascii()):
        return quoted(value)
    return literal(value.encode("utf-8", "replace").replace(b"\x00", b""))


def nstring(value: str | bytes | None, utf8: bool = False) -> bytes:
    return b"NIL" if value is None else string(value, utf8)


def serialize(value: object, utf8: bool = False) -> bytes:
    out: list[bytes] = []
    _put(value, out, utf8)
    return b"".join(out)


def _put(value: object, out: list[bytes], utf8: bool) -> None:
    # Hot path of FETCH ENVELOPE/BODYSTRUCTURE over thousands of messages: keep it lean.
    if value is None:
        out.append(b"NIL")
    elif type(value) is str:
        if len(value) <= MAX_QUOTED and value.isprintable() and (utf8 or value.isascii()):
            if "\\" in value or '"' in value:
                value = value.replace("\\", "\\\\").replace('"', '\\"')
            out.append(b'"' + value.encode("utf-8") + b'"')
        else:
            out.append(literal(value.encode("utf-8", "replace").replace(b"\x00", b"")))
    elif isinstance(value, list | tuple):
        if not value:
            out.append(b"NIL")  # an empty list is never valid IMAP syntax where the store gives one
            return
        out.append(b"(")
        first = True
        for item in value:
            if not first:
                out.append(b" ")
            first = False
            _put(item, out, utf8)
        out.append(b")")
    elif isinstance(value, Atom):
        out.append(value.encode("ascii"))
    elif isinstance(value, bool):
        out.append(b"1" if value else b"0")
    elif isinstance(value, int):
        out.append(b"%d" % value)
    elif isinstance(value, str | bytes):
        out.append(string(value, utf8))
    else:
        raise TypeError(f"cannot serialise {type(value).__name__}")


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name on the wire: modified UTF-7 (RFC 3501 §5.1.3) unless UTF8=ACCEPT is on."""
    if not utf8:
        name = mutf7.encode(name)
    return string(name, utf8)


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
    start = prev = None
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
