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
    try:
        decoded = base64.b64decode(data.replace(b"\r\n", b""), validate=True)
    except (binascii.Error, ValueError):
        return ZLIB, zlib.compress(data, 1)
    encoded = base64.encodebytes(decoded).replace(b"\n", b"\r\n")
    if encoded == data:
        return BASE64, decoded
    if encoded[:-2] == data:
        return BASE64_OPEN, decoded
    return ZLIB, zlib.compress(data, 1)


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
