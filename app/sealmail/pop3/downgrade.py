"""Header downgrading for clients that have not enabled UTF-8 (RFC 6856 §2, RFC 6858 §3).

A message whose header has raw UTF-8 (RFC 6532) is shown to such a client with an all-ASCII header:

* address fields: display names become RFC 2047 encoded-words; an address whose addr-spec itself is
  not ASCII cannot be written in ASCII, so it becomes an empty group named by the encoded original
  (``=?utf-8?b?...?= :;``), as RFC 6858 §3 does;
* ``Content-Type`` / ``Content-Disposition``: parameter values use RFC 2231 encoding;
* every other field: the value as RFC 2047 encoded-words (an unstructured field).

ASCII fields stay byte for byte, and the body is never touched. Deterministic, so the size LIST
reports is the size RETR sends. The message stored in the mailbox is never changed.
"""

from __future__ import annotations

import email.utils
from email.header import Header

ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "return-path",
        "delivered-to",
    }
)
MIME_PARAMETER_FIELDS = frozenset({"content-type", "content-disposition"})
_LINESEP = "\r\n"


def downgrade_header(header: bytes) -> bytes:
    """An ASCII version of a CRLF header block (including its blank line, when it has one)."""
    out: list[bytes] = []
    for field in _fields(header):
        if field.isascii():
            out.append(field)
        else:
            out.append(_downgrade_field(field))
    return b"".join(out)


def _fields(header: bytes) -> list[bytes]:
    """Header fields with their folded continuation lines, each ending in CRLF; the blank line last."""
    fields: list[bytes] = []
    for line in header.split(b"\r\n")[:-1]:
        piece = line + b"\r\n"
        if line[:1] in (b" ", b"\t") and fields and fields[-1] != b"\r\n":
            fields[-1] += piece
        else:
            fields.append(piece)
    return fields


def _downgrade_field(field: bytes) -> bytes:
    name, colon, value = field.partition(b":")
    if not colon or not name.isascii() or not name.strip():
        # Not a header field at all (a stray line): keep it readable rather than drop it.
        return _encode_unstructured("", field.decode("utf-8", "replace").strip()).encode() + b"\r\n"
    text = value.decode("utf-8", "replace").replace("\r\n", "").strip()
    key = name.decode().strip().lower()
    if key in ADDRESS_FIELDS:
        downgraded = _downgrade_addresses(text)
    elif key in MIME_PARAMETER_FIELDS:
        downgraded = _downgrade_parameters(text)
    else:
        downgraded = _encode_unstructured(name.decode(), text)
    return name + b": " + downgraded.encode("ascii") + b"\r\n"


def _encode_unstructured(name: str, text: str) -> str:
    if text.isascii():
        return text
    return Header(text, "utf-8", header_name=name or None).encode(linesep=_LINESEP)


def _downgrade_addresses(text: str) -> str:
    parts = []
    for display, addr in email.utils.getaddresses([text]):
        if not addr and not display:
            continue
        if addr.isascii():
            parts.append(email.utils.formataddr((display, addr), charset="utf-8"))
        else:
            original = f"{display} <{addr}>" if display else addr
            parts.append(Header(original, "utf-8").encode(linesep=_LINESEP) + " :;")
    return ("," + _LINESEP + " ").join(parts) if parts else _encode_unstructured("", text)


def _downgrade_parameters(text: str) -> str:
    value, *params = [p.strip() for p in text.split(";")]
    out = [_encode_unstructured("", value)]
    for param in params:
        if not param:
            continue
        key, eq, raw = param.partition("=")
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1]
        if eq and not raw.isascii():
            # RFC 2231 §4: name*=charset'language'percent-encoded-value
            out.append(f"{key.strip()}*={email.utils.encode_rfc2231(raw, 'utf-8')}")
        elif param.isascii():
            out.append(param)
        else:
            out.append(_encode_unstructured("", param))
    return (";" + _LINESEP + " ").join(out)
