"""How a large attachment body is kept: as decoded bytes when that is exact, else compressed.

Most attachments are base64 in 76-character CRLF lines. Keeping the decoded octets saves a quarter
of the space and all of the compression work (their content is usually compressed already), and
encoding them again gives back exactly the stored text — which is checked before choosing it, so
a body that was encoded any other way is kept as it came (zlib, fast level).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from itertools import chain

BASE64 = "b64"  # decoded octets; base64 with CRLF every 76 characters gives the original
BASE64_OPEN = "b64-open"  # the same, without the final CRLF (the part ends right before a boundary)
ZLIB = "zlib"

_LINE = 76  # RFC 2045 §6.8: encoded lines are at most 76 characters
_ROWS = 64
# Cuts 64 lines at once in C: splitting in a Python loop cost twice the encoding itself.
_BLOCK = struct.Struct(f"{_LINE}s" * _ROWS)


def pack(data: bytes) -> tuple[str, bytes]:
    text = data.replace(b"\r\n", b"")
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return ZLIB, zlib.compress(data, 1)
    packing = _layout(data, text, decoded)
    if packing is None:
        return ZLIB, zlib.compress(data, 1)
    return packing, decoded


def _layout(data: bytes, text: bytes, decoded: bytes) -> str | None:
    """Whether ``base64_lines(decoded)`` gives ``data`` back (BASE64), or all of it but the final
    CRLF (BASE64_OPEN), decided without encoding it again: ``text`` (``data`` without its CRLFs)
    is valid base64 of ``decoded``, so only two things can differ from the standard encoding —
    where the lines break, and the unused bits of the last group (RFC 4648 §3.5)."""
    if not text:
        return BASE64 if not data else None
    tail = decoded[len(decoded) - (len(decoded) % 3 or 3) :]
    if binascii.b2a_base64(tail, newline=False) != text[-4:]:
        return None
    lines = -(-len(text) // _LINE)
    if len(data) == len(text) + 2 * lines:
        packing, breaks = BASE64, lines
    elif len(data) == len(text) + 2 * (lines - 1):
        packing, breaks = BASE64_OPEN, lines - 1
    else:
        return None
    # data holds exactly `breaks` CRLFs; the standard layout puts one after each full line of 76
    # characters (every 78 octets) and, for BASE64, one at the very end. When all of those slots hold
    # one, every CRLF is where the standard encoder puts it; an LF in data always ends a CRLF (text
    # has none), so looking at the LFs' places is enough.
    slots = min(len(text) // _LINE, breaks)
    standard = data[_LINE + 1 :: _LINE + 2][:slots].count(b"\n") == slots
    return packing if standard and (packing == BASE64_OPEN or data.endswith(b"\r\n")) else None


def unpack(packing: str, stored: bytes) -> bytes:
    if packing == ZLIB:
        return zlib.decompress(stored)
    encoded = base64_lines(stored)
    return encoded if packing == BASE64 else encoded[:-2]


def base64_lines(data: bytes) -> bytes:
    """``base64.encodebytes(data)`` with CRLF line ends, the same octets, about twice as fast."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    whole = len(encoded) - len(encoded) % _BLOCK.size
    lines: list[bytes] = list(chain.from_iterable(_BLOCK.iter_unpack(memoryview(encoded)[:whole])))
    lines += [encoded[i : i + _LINE] for i in range(whole, len(encoded), _LINE)]
    lines.append(b"")
    return b"\r\n".join(lines)
