"""POP3 wire format: CRLF sizes, byte-stuffing, TOP, UIDL and UTF-8 downgrading, as pure functions."""

from __future__ import annotations

import base64
import email
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from sealmail.pop3 import wire
from sealmail.pop3.downgrade import downgrade_header, encode_words
from sealmail.store.indexing import split_header
from sealmail.store.mailbox import crlf_size

# Messages made of the bytes that matter here: CR, LF, dots, 8-bit text.
_pieces = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b" ", b"\xc3\xa9", b"Subject: x", b":"])
messages = st.lists(_pieces, max_size=40).map(b"".join)


@given(messages)
def test_stored_crlf_size_is_what_is_sent(raw: bytes) -> None:
    """RFC 1939 §11: the size LIST reports (computed by the store at append) is the octets RETR sends."""
    sent = wire.to_crlf(raw)
    assert len(sent) == crlf_size(raw)
    assert b"\n" not in sent.replace(b"\r\n", b"")  # no bare LF left
    assert not sent or sent.endswith(b"\r\n")


@given(messages)
def test_byte_stuffing_round_trips(raw: bytes) -> None:
    """RFC 1939 §3: lines starting with "." get one more; the "." line ends the response."""
    sent = wire.to_crlf(raw)
    response = wire.multiline(sent)
    assert response.endswith(b".\r\n")
    lines = response[:-3].split(b"\r\n")[:-1] if response[:-3] else []
    assert all(line != b"." for line in lines)
    unstuffed = b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)
    assert unstuffed == sent


@given(messages, st.booleans())
def test_downgraded_size_is_known_from_the_header_alone(body: bytes, eight_bit: bool) -> None:
    """RFC 6856 §2: LIST sizes match RETR also for messages downgraded for a non-UTF-8 client."""
    header = b"From: R\xc3\xa9mi <r\xc3\xa9mi@example.test>\nSubject: caf\xc3\xa9\n" if eight_bit else b"Subject: x\n"
    raw = header + b"\n" + body
    stored_header = split_header(raw)
    utf8_header = not stored_header.isascii()
    for utf8 in (False, True):
        sent = wire.wire_message(raw, utf8=utf8, utf8_header=utf8_header)
        assert len(sent) == wire.wire_size(crlf_size(raw), stored_header, utf8=utf8, utf8_header=utf8_header)
    assert split_header(wire.wire_message(raw, utf8=False, utf8_header=utf8_header)).isascii()


@given(st.text(min_size=1, max_size=300).filter(lambda t: "\r" not in t and "\n" not in t))
def test_encoded_words_round_trip(text: str) -> None:
    """RFC 2047 §2, §5: words of at most 75 characters, whole characters only, decoding to the text."""
    encoded = encode_words(text)
    assert encoded.isascii()
    words = encoded.split("\r\n ")
    assert all(len(word) <= 75 for word in words)
    decoded = b"".join(base64.b64decode(word[len("=?utf-8?b?") : -2]) for word in words)
    assert decoded == text.encode("utf-8", "surrogateescape")
    for word in words:
        base64.b64decode(word[len("=?utf-8?b?") : -2]).decode("utf-8")  # no character split


def test_top_counts_body_lines() -> None:
    """RFC 1939 §7: TOP sends the header, the blank line, then n lines of the body."""
    message = b"A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\nline 3\r\n"
    header, body = wire.header_and_body(message)
    assert header == b"A: 1\r\nB: 2\r\n\r\n"
    assert wire.first_lines(body, 0) == b""
    assert wire.first_lines(body, 2) == b"line 1\r\nline 2\r\n"
    assert wire.first_lines(body, 10) == body
    assert wire.header_and_body(b"A: 1\r\n") == (b"A: 1\r\n", b"")  # no body at all
    assert wire.header_and_body(b"\r\nbody\r\n") == (b"\r\n", b"body\r\n")  # empty header


def test_unique_ids_are_printable_and_distinct() -> None:
    """RFC 1939 §7: 1 to 70 characters in 0x21..0x7E, from UIDVALIDITY and UID."""
    ids = {wire.unique_id(v, u) for v in (1, 1700000000, 2**32 - 1) for u in (1, 2, 2**32 - 1)}
    assert len(ids) == 9
    for uid in ids:
        assert 1 <= len(uid) <= 70
        assert all(0x21 <= ord(c) <= 0x7E for c in uid)


def test_message_numbers() -> None:
    assert wire.message_number("12") == 12
    for bad in ("", "-1", "+1", "1.0", "x", "١", "1 ", "99999999999"):
        assert wire.message_number(bad) is None


def test_downgrade_keeps_ascii_fields_and_readable_values() -> None:
    """RFC 6858 §3: an all-ASCII header that decodes back to the original values."""
    header = (
        "From: Rémi Dupont <rémi@universitéxyz.fr>\r\n"
        "To: Zoë <zoe@example.org>, bob@example.org\r\n"
        "Subject: Réunion du conseil d'administration de l'université, demain, très important\r\n"
        'Content-Type: text/plain; charset=utf-8; name="résumé.txt"\r\n'
        "X-Plain: stays\r\n"
        "\r\n"
    ).encode()
    out = downgrade_header(header)
    assert out.isascii()
    assert b"X-Plain: stays\r\n" in out
    assert out.endswith(b"\r\n\r\n")
    assert b"\n" not in out.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed["Subject"] == "Réunion du conseil d'administration de l'université, demain, très important"
    assert parsed["To"].addresses[0].display_name == "Zoë"
    assert "rémi@universitéxyz.fr" in str(parsed["From"])  # a group named by the original address
    assert parsed.get_param("name") == "résumé.txt"
