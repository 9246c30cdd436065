"""POP3 wire format: pure functions over bytes, no I/O.

Stored messages are kept byte for byte as they arrived. POP3 sends lines ending in CRLF (RFC 1939
§3), so a message stored with bare LF line endings is sent with each bare LF turned into CRLF, and a
message whose last line has no line ending gets one. ``sealmail.store.mailbox.crlf_size`` computes the
length of exactly that at append time, so LIST and STAT report the octets RETR really sends (RFC 1939
§11), without opening any message at login. Byte-stuffing (RFC 1939 §3) and the terminating ``.``
line are not counted, as the RFC says.
"""

from __future__ import annotations

import re

from sealmail.pop3.downgrade import downgrade_header
from sealmail.store.indexing import split_header

_BARE_LF = re.compile(rb"(?<!\r)\n")
HEADER_END = b"\r\n\r\n"


def to_crlf(raw: bytes) -> bytes:
    """Every line ending as CRLF, and a final CRLF when the message does not end with one."""
    if not raw:
        return raw
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raw = _BARE_LF.sub(b"\r\n", raw)
    if not raw.endswith(b"\n"):
        raw += b"\r\n"
    return raw


def wire_message(raw: bytes, *, utf8: bool, utf8_header: bool) -> bytes:
    """What RETR sends for a stored message, before byte-stuffing.

    A client that has not enabled UTF-8 mode (RFC 6856 §2) gets a message whose header has 8-bit
    octets downgraded (RFC 6858 §3); the body is never touched.
    """
    if utf8 or not utf8_header:
        return to_crlf(raw)
    header = split_header(raw)
    return downgrade_header(to_crlf(header)) + to_crlf(raw[len(header) :])


def wire_size(crlf_size: int, header: bytes, *, utf8: bool, utf8_header: bool) -> int:
    """``len(wire_message(...))`` from the stored CRLF size and the stored header block alone."""
    if utf8 or not utf8_header:
        return crlf_size
    normal = to_crlf(header)
    return crlf_size - len(normal) + len(downgrade_header(normal))


def header_and_body(message: bytes) -> tuple[bytes, bytes]:
    """(header block including the blank line that ends it, body) of a CRLF message (for TOP).

    A message without a blank line is all header (RFC 5322 §2.1: the body is optional).
    """
    if message.startswith(b"\r\n"):
        return b"\r\n", message[2:]
    end = message.find(HEADER_END)
    if end < 0:
        return message, b""
    return message[: end + 4], message[end + 4 :]


def first_lines(body: bytes, count: int) -> bytes:
    """The first ``count`` lines of a CRLF body (TOP, RFC 1939 §7): all of it when it has fewer."""
    pos = 0
    for _ in range(count):
        found = body.find(b"\r\n", pos)
        if found < 0:
            return body
        pos = found + 2
    return body[:pos]


def multiline(data: bytes) -> bytes:
    """A CRLF message as a multi-line response body: byte-stuffed, then the ``.`` line (RFC 1939 §3)."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def unique_id(uidvalidity: int, uid: int) -> str:
    """UIDL (RFC 1939 §7): the store's UID and the folder's UIDVALIDITY, both never reused.

    The format is Dovecot's default (``%08Xu%08Xv``), 16 characters in 0x21..0x7E as §7 requires.
    """
    return f"{uid:08X}{uidvalidity:08X}"


def message_number(text: str) -> int | None:
    """A message-number argument (RFC 1939 §3: digits, no sign), or None when it is not one."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    return int(text)
