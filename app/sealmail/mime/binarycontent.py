"""Binary content from APPEND made storable as IMAP text (RFC 3516 §4.4 and §6).

A literal8 APPEND may carry NUL octets, which no IMAP string can hold (RFC 9051 §4.3). RFC 3516 §4.4
lets the server change the content-transfer-encoding of appended data when nothing is lost, and §6
requires BODYSTRUCTURE and BODY[] to describe the message in an encoding the base protocol can
carry: every leaf part whose content holds NUL is re-encoded in base64, the other parts are left
exactly as they were (§6: change encodings only where necessary). BINARY[] decodes it back to the
octets that were appended.
"""

from __future__ import annotations

import base64

from sealmail.mime.headers import iter_fields
from sealmail.mime.model import Part
from sealmail.mime.parser import parse

# Encodings whose content is the data itself: re-encoding that content loses nothing.
_IDENTITY = frozenset(("", "7bit", "8bit", "binary"))
_LINE = 57  # octets per base64 line: 76 characters (RFC 2045 §6.8)


class NotStorable(ValueError):
    """A NUL octet that no content-transfer-encoding can carry (in a header, or in encoded content)."""


def without_nul(raw: bytes) -> bytes:
    """``raw`` with each leaf part holding NUL re-encoded in base64; ``NotStorable`` if NUL would remain."""
    if b"\x00" not in raw:
        return raw
    parsed = parse(raw)
    leaves = [
        part
        for part in parsed.root.walk()
        if not part.children and part.message is None and not part.is_multipart
        if b"\x00" in raw[part.body_start : part.body_end]
    ]
    out = raw
    for part in sorted(leaves, key=lambda p: p.body_start, reverse=True):  # from the end: offsets stay valid
        if (part.encoding or "").strip().lower() not in _IDENTITY:
            raise NotStorable("NUL inside content that is already transfer-encoded")
        content = raw[part.body_start : part.body_end]
        out = out[: part.header_start] + _base64_header(raw, part) + _base64_lines(content) + out[part.body_end :]
    if b"\x00" in out:
        raise NotStorable("NUL outside the content of a body part")
    return out


def _base64_header(raw: bytes, part: Part) -> bytes:
    """The part's header block with its Content-Transfer-Encoding field saying base64."""
    kept = bytearray()
    last = part.header_start
    for field in iter_fields(raw, part.header_start, part.header_end):
        if field.name.strip().lower() != b"content-transfer-encoding":
            kept += raw[field.start : field.end]
        last = field.end
    if kept and not kept.endswith(b"\n"):
        kept += b"\r\n"
    blank = raw[last : part.header_end] or b"\r\n"
    return bytes(kept) + b"Content-Transfer-Encoding: base64\r\n" + blank


def _base64_lines(content: bytes) -> bytes:
    return b"\r\n".join(base64.b64encode(content[i : i + _LINE]) for i in range(0, len(content), _LINE))
