"""APPEND of binary content with literal8 (RFC 3516 §4.4 and §6) over real sockets.

NUL octets cannot travel in an IMAP string (RFC 9051 §4.3), only in BINARY's literal8. RFC 3516 lets
the server change the content-transfer-encoding of what was appended as long as nothing is lost, and
requires BODYSTRUCTURE and BODY[] to describe the message in an encoding the base protocol can carry.
Dovecot's ImapTest (append-binary) checks that BODY[1] of such a part is neither the raw octets in a
literal nor a literal8.
"""

from __future__ import annotations

import base64
import re

from .conftest import RawClient

SINGLE = (
    b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"\x00-\xe4\n\r\n\n"
)
CONTENT = b"\x00\x01\x02\xff\r\n\x00"
MULTIPART = (
    b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain\r\n\r\ntext\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\n\r\n" + CONTENT + b"\r\n--XX--\r\n"
)


def _append8(raw: RawClient, tag: str, msg: bytes) -> bytes:
    return raw.command(f"{tag} APPEND INBOX ~{{{len(msg)}+}}\r\n".encode() + msg, tag=tag)[-1]


def _fetch(raw: RawClient, items: str) -> bytes:
    lines = raw.command(f"f FETCH 1 ({items})")
    assert lines[-1].startswith(b"f OK"), lines
    return lines[0]


def test_binary_part_is_stored_as_base64_and_binary_gives_it_back(raw: RawClient) -> None:
    """RFC 3516 §4.4: the server MAY change the CTE of appended data without loss; §6: BODYSTRUCTURE and
    BODY[] then describe base64, and BINARY[1] (§4.3) returns the original octets in a literal8."""
    assert _append8(raw, "a", SINGLE).startswith(b"a OK")
    raw.command("s SELECT INBOX")
    body = _fetch(raw, "BODY.PEEK[1]")
    assert b"\x00" not in body
    assert b"~{" not in body
    encoded = re.search(rb"\{(\d+)\}\r\n(.*)\)\r\n$", body, re.S)
    assert encoded is not None
    assert base64.b64decode(encoded.group(2)) == SINGLE.split(b"\r\n\r\n", 1)[1]
    assert b' "base64" ' in _fetch(raw, "BODYSTRUCTURE")
    whole = _fetch(raw, "BODY.PEEK[] RFC822.SIZE")
    size = re.search(rb"RFC822.SIZE (\d+)", whole)
    literal = re.search(rb"BODY\[\] \{(\d+)\}", whole)
    assert size
    assert literal
    assert size.group(1) == literal.group(1)
    assert b"Content-Transfer-Encoding: base64\r\n" in whole
    assert b"Content-Transfer-Encoding: binary" not in whole
    original = SINGLE.split(b"\r\n\r\n", 1)[1]
    assert _fetch(raw, "BINARY.SIZE[1] BINARY.PEEK[1]") == (
        b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n" % (len(original), len(original)) + original + b")\r\n"
    )


def test_only_the_parts_holding_nul_change(raw: RawClient) -> None:
    """RFC 3516 §6: change the encoding only where "absolutely necessary": the text part stays as it was."""
    assert _append8(raw, "a", MULTIPART).startswith(b"a OK")
    raw.command("s SELECT INBOX")
    assert _fetch(raw, "BODY.PEEK[1]") == b"* 1 FETCH (BODY[1] {4}\r\ntext)\r\n"
    assert _fetch(raw, "BINARY.PEEK[2]") == b"* 1 FETCH (BINARY[2] ~{%d}\r\n" % len(CONTENT) + CONTENT + b")\r\n"
    structure = _fetch(raw, "BODYSTRUCTURE")
    assert b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0 ' in structure
    assert b'("application" "octet-stream" NIL NIL NIL "base64" ' in structure


def test_nul_that_no_encoding_can_carry_is_refused(raw: RawClient) -> None:
    """RFC 3516 §4.4: content the mailbox cannot store is refused with NO [UNKNOWN-CTE] (here a NUL in a
    header field, which no content-transfer-encoding covers); the session goes on."""
    assert _append8(raw, "a", b"Subject: a\x00b\r\n\r\nhello\r\n").startswith(b"a NO [UNKNOWN-CTE]")
    assert raw.command("b NOOP")[-1] == b"b OK NOOP completed\r\n"
    assert raw.command("c STATUS INBOX (MESSAGES)")[0] == b'* STATUS "INBOX" (MESSAGES 0)\r\n'
