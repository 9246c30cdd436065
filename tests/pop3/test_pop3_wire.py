"""POP3 wire format: byte-stuffing, TOP, UIDL and message numbers, as pure functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sealmail.pop3 import wire
from sealmail.store.wireform import to_crlf

_pieces = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b" ", b"\xc3\xa9", b"Subject: x", b":"])
messages = st.lists(_pieces, max_size=40).map(b"".join)


@given(messages)
def test_byte_stuffing_round_trips(raw: bytes) -> None:
    """RFC 1939 §3: lines starting with "." get one more; the "." line ends the response."""
    sent = to_crlf(raw)
    response = wire.multiline(sent)
    assert response.endswith(b".\r\n")
    lines = response[:-3].split(b"\r\n")[:-1] if response[:-3] else []
    assert all(line != b"." for line in lines)
    unstuffed = b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)
    assert unstuffed == sent


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
