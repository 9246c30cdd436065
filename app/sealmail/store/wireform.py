"""The forms in which protocols send a stored message, and their sizes, computed once at append time.

Messages are stored byte for byte as they arrived. Two forms differ from that:

* **CRLF** (POP3, RFC 1939 §3, §11): every line ending is sent as CRLF, so a bare LF becomes CRLF
  and a last line without an ending gets one.
* **ASCII header** (RFC 6856 §2 for POP3, RFC 6855 for IMAP, by the method of RFC 6858 §3): a
  client that has not enabled UTF-8 gets a message whose header has raw UTF-8 (RFC 6532) with that
  header downgraded:

  - address fields: display names become RFC 2047 encoded-words; an address whose addr-spec itself
    is not ASCII cannot be written in ASCII, so it becomes an empty group named by the encoded
    original (``=?utf-8?b?...?= :;``);
  - ``Content-Type`` / ``Content-Disposition``: parameter values use RFC 2231 encoding;
  - every other field: the value as RFC 2047 encoded-words (an unstructured field).

  ASCII fields stay byte for byte, and the body is never touched.

The mailbox records ``crlf_size`` and ``ascii_size`` per message when it is stored, so listings
report exactly what is sent without opening messages. Everything here is deterministic; a change to
what ``downgrade_header`` produces needs a migration that recomputes the stored ``ascii_size``.
"""

from __future__ import annotations

import base64
import email.utils
import re

_BARE_LF = re.compile(rb"(?<!\r)\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def to_crlf(raw: bytes) -> bytes:
    """Every line ending as CRLF, and a final CRLF when the message does not end with one."""
    if not raw:
        return raw
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raw = _BARE_LF.sub(b"\r\n", raw)
    if not raw.endswith(b"\n"):
        raw += b"\r\n"
    return raw


def crlf_size(raw: bytes) -> int:
    """``len(to_crlf(raw))`` without building it."""
    if not raw:
        return 0
    bare_lf = raw.count(b"\n") - raw.count(b"\r\n")
    return len(raw) + bare_lf + (0 if raw.endswith(b"\n") else 2)


def split_header(raw: bytes) -> bytes:
    """The header block including the blank line that ends it (the whole message when there is none)."""
    match = _BLANK_LINE.search(raw)
    return raw[: match.end()] if match else raw


def ascii_form(raw: bytes) -> bytes:
    """The CRLF form with the header downgraded to ASCII; the CRLF form when the header is ASCII."""
    header = split_header(raw)
    if header.isascii():
        return to_crlf(raw)
    return downgrade_header(to_crlf(header)) + to_crlf(raw[len(header) :])


def ascii_size(raw: bytes, crlf: int | None = None) -> int:
    """``len(ascii_form(raw))``, working on the header only (``crlf``: ``crlf_size(raw)`` if known)."""
    header = split_header(raw)
    whole = crlf_size(raw) if crlf is None else crlf
    if header.isascii():
        return whole
    normal = to_crlf(header)
    return whole - len(normal) + len(downgrade_header(normal))


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
_FOLD = "\r\n "
# A header field with its folded continuation lines (RFC 5322 §2.2.3), or the blank line that ends the header.
_FIELD = re.compile(rb"[^\n]*\n(?:[ \t][^\n]*\n)*")  # on CRLF text: a line may hold a bare CR
# The common address forms, parsed without the general RFC 5322 parser: "Name <a@b>", "<a@b>", "a@b".
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:"([^"\\]*)"|([^"<>,;:@\\()\[\]]*?))\s*<([^<>\s,;:"()\\]+@[^<>\s,;:"()\\]+)>\s*|\s*([^<>\s,;:"()\\]+@[^<>\s,;:"()\\]+)\s*'
)
_WORD_OCTETS = 45  # base64 of 45 octets is 60 characters: "=?utf-8?b?...?=" stays within 75 (RFC 2047 §2)


def encode_words(text: str) -> str:
    """RFC 2047 "B" encoded-words for ``text``, folded; never splits a character (§5)."""
    octets = text.encode("utf-8", "surrogateescape")
    if len(octets) <= _WORD_OCTETS:
        return f"=?utf-8?b?{base64.b64encode(octets).decode()}?="
    words, pos, length = [], 0, len(octets)
    while pos < length:
        end = pos + _WORD_OCTETS
        if end >= length:
            end = length
        else:
            while end > pos + 1 and 0x80 <= octets[end] < 0xC0:
                end -= 1  # back to the first octet of a UTF-8 sequence
        words.append(f"=?utf-8?b?{base64.b64encode(octets[pos:end]).decode()}?=")
        pos = end
    return _FOLD.join(words)


def downgrade_header(header: bytes) -> bytes:
    """An ASCII version of a CRLF header block (including its blank line, when it has one)."""
    return b"".join(field if field.isascii() else _downgrade_field(field) for field in _FIELD.findall(header))


def _downgrade_field(field: bytes) -> bytes:
    name, colon, value = field.partition(b":")
    if not colon or not name.isascii() or not name.strip():
        # Not a header field at all (a stray line): keep it readable rather than drop it.
        return _encode_unstructured(field.decode("utf-8", "replace").strip()).encode() + b"\r\n"
    text = value.decode("utf-8", "replace").replace("\r\n", "").strip()
    key = name.decode().strip().lower()
    if key in ADDRESS_FIELDS:
        downgraded = _downgrade_addresses(text)
    elif key in MIME_PARAMETER_FIELDS:
        downgraded = _downgrade_parameters(text)
    else:
        downgraded = _encode_unstructured(text)
    return name + b": " + downgraded.encode("ascii") + b"\r\n"


def _encode_unstructured(text: str) -> str:
    return text if text.isascii() else encode_words(text)


def _addresses(text: str) -> list[tuple[str, str]]:
    simple = _SIMPLE_ADDRESS.fullmatch(text)
    if simple is not None:
        quoted, plain, addr, bare = simple.groups()
        return [(quoted if quoted is not None else (plain or "").strip(), addr or bare)]
    return email.utils.getaddresses([text])


def _downgrade_addresses(text: str) -> str:
    parts = []
    for display, addr in _addresses(text):
        if not addr and not display:
            continue
        if not addr.isascii():
            # RFC 6858 §3: no ASCII form exists; an empty group named by the original address.
            parts.append(encode_words(f"{display} <{addr}>" if display else addr) + " :;")
        elif display.isascii():
            parts.append(email.utils.formataddr((display, addr)))
        else:
            parts.append(f"{encode_words(display)} <{addr}>")
    return ("," + _FOLD).join(parts) if parts else _encode_unstructured(text)


def _downgrade_parameters(text: str) -> str:
    value, *params = [p.strip() for p in text.split(";")]
    out = [_encode_unstructured(value)]
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
            out.append(_encode_unstructured(param))
    return (";" + _FOLD).join(out)
