"""How a large attachment body is kept: as decoded bytes when that is exact, else compressed.

Most attachments are base64 in 76-character CRLF lines. Keeping the decoded octets saves a quarter
of the space and all of the compression work (their content is usually compressed already), and
encoding them again gives back exactly the stored text — which is checked before choosing it, so
a body that was encoded any other way is kept as it came (zlib, fast level).
"""

from __future__ import annotations

import base64
import binascii
import zlib

BASE64 = "b64"  # decoded octets; base64 with CRLF every 76 characters gives the original
BASE64_OPEN = "b64-open"  # the same, without the final CRLF (the part ends right before a boundary)
ZLIB = "zlib"


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
    encoded = base64.encodebytes(stored).replace(b"\n", b"\r\n")
    return encoded if packing == BASE64 else encoded[:-2]
