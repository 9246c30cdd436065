"""Fuzz targets: the MIME parser behind BODYSTRUCTURE, ENVELOPE and SEARCH (sealmail/mime).

``mime.parse`` is documented never to raise (it degrades to opaque parts); the header-value
parsers return None for what they cannot read; section specs raise ``InvalidSection``.
"""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from sealmail import mime
from sealmail.imap import wire
from sealmail.mime import addrlist, headers
from sealmail.mime.binarycontent import NotStorable, without_nul
from sealmail.mime.preview import preview_text

from .fuzzkit import fuzz, lines_from

MIME_WORDS = [
    "\r\n", "\n", "\r\n\r\n", ": ", ":", " ", "\t", ";", "=", '"', "(", ")", "<", ">", "@", ",", "--", "--b", "--b--",
    "Content-Type: ", "multipart/mixed", "multipart/alternative", "message/rfc822", "message/global", "text/plain",
    "; boundary=b", "; boundary=\"b\"", "; charset=utf-8", "; name*0*=utf-8''%e2%82", "; name*1=x", "*", "'",
    "Content-Transfer-Encoding: ", "base64", "quoted-printable", "x-uuencode", "Content-Disposition: attachment",
    "From: ", "To: ", "Cc: ", "Subject: ", "Date: ", "Message-ID: ", "In-Reply-To: ", "Sender: ", "Reply-To: ",
    "=?utf-8?B?w6k=?=", "=?iso-8859-1?Q?=E9?=", "=?x?", "?=", "group:", "a@b", "\"q\" <a@b.c>", "Mon, 1 Jan 2026",
    "Thu, 31 Feb 99999 25:61:61 +9999", "é", "\x00", "\xff",
]  # fmt: skip
message_bytes = st.one_of(st.binary(max_size=2000), lines_from(MIME_WORDS, max_size=60))


@fuzz()
@given(message_bytes)
def test_parse_and_fetch_values(raw: bytes) -> None:
    msg = mime.parse(raw)
    assert "error" not in msg.limits, "the parser fell back to its catch-all"
    wire.serialize(mime.bodystructure(msg))
    wire.serialize(mime.body(msg))
    wire.envelope_text(mime.envelope_value(msg))
    assert mime.ParsedMessage.from_json(msg.to_json()) == msg
    for number, _part in mime.numbered_parts(msg):
        for suffix in ("", ".MIME", ".HEADER", ".TEXT"):
            data = mime.section_bytes(raw, msg, number + suffix)
            assert data is None or len(data) <= len(raw)
        with contextlib.suppress(mime.UnknownTransferEncoding):
            mime.binary_bytes(raw, msg, number)
    mime.search_text(raw, msg)
    mime.sent_date(msg)
    mime.sent_day(msg)
    mime.search_headers(msg)
    assert len(preview_text(raw, msg)) <= 256  # RFC 8970 §3


@fuzz()
@given(message_bytes)
def test_binary_append_reencoding(raw: bytes) -> None:
    """RFC 3516 §4.4: what APPEND stores of a literal8 has no NUL, or the APPEND is refused."""
    try:
        out = without_nul(raw)
    except NotStorable:
        return
    assert b"\x00" not in out


HEADER_WORDS = [w for w in MIME_WORDS if not w.startswith(("\r", "\n"))]
header_value = st.one_of(
    st.text(max_size=120), lines_from(HEADER_WORDS, max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape"))
)


@fuzz()
@given(header_value)
def test_header_values(value: str) -> None:
    parsed = headers.parse_content_type(value)
    assert parsed is None or (parsed[0] and parsed[1])
    headers.parse_disposition(value)
    headers.parse_token(value)
    headers.parse_language(value)
    assert isinstance(headers.decode_words(value), str)
    addresses = addrlist.parse_address_list(value)
    assert addresses is None or isinstance(addresses, tuple)
    mime.parse_date(value)


@fuzz()
@given(
    st.one_of(st.text(max_size=40), lines_from(["1", ".", "0", "HEADER", "FIELDS", " (", ")", "MIME", "TEXT", ".NOT"]))
)
def test_section_specs(spec: str | bytes) -> None:
    text = spec.decode("utf-8", "replace") if isinstance(spec, bytes) else spec
    with contextlib.suppress(mime.InvalidSection):
        mime.parse_section(text)
