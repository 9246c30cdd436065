"""POP3 wire format: pure functions over bytes, no I/O.

POP3 sends lines ending in CRLF (RFC 1939 §3); what RETR sends for a stored message is its CRLF form,
or its ASCII-header form for a client that has not enabled UTF-8 (RFC 6856 §2). Both forms and their
sizes come from ``sealmail.store.wireform``, which the store applies at append time, so LIST and STAT
report the octets RETR really sends (RFC 1939 §11) without opening any message at login.
Byte-stuffing (RFC 1939 §3) and the terminating ``.`` line are not counted, as the RFC says.
"""

from __future__ import annotations

from sealmail.store.wireform import ascii_form, to_crlf

HEADER_END = b"\r\n\r\n"


def wire_message(raw: bytes, *, utf8: bool) -> bytes:
    """What RETR sends for a stored message, before byte-stuffing."""
    return to_crlf(raw) if utf8 else ascii_form(raw)


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
