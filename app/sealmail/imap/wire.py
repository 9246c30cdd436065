"""IMAP wire forms of data values (RFC 9051 §4): NIL, numbers, strings, parenthesised lists.

``imap_serialize`` writes the nested values ``sealmail.store.mime`` produces for BODYSTRUCTURE,
BODY and ENVELOPE (and any other FETCH data of that shape):

* ``None`` → ``NIL``; ``int`` → decimal; ``list``/``tuple`` → ``(a b c)``, except that the leading
  list items of an :class:`~sealmail.store.mime.imap.Adjacent` list are not separated (``1*body``,
  ``1*address`` in RFC 9051 §9);
* ``str``/``bytes`` → a quoted string when it is short and safe, else a literal ``{n}\\r\\n...``.

8-bit text goes as a literal unless the client enabled UTF8=ACCEPT (RFC 6855 §3: then UTF-8 may be
quoted); CR, LF and NUL always force a literal (RFC 9051 §4.3). A NUL cannot be sent in a plain literal:
the caller must use ``literal8`` where the grammar allows it (BINARY), so here it is refused.
"""

from __future__ import annotations

from typing import Any

from sealmail.store.mime.imap import Adjacent

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
