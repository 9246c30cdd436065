"""Fuzz targets: the POP3 argument parsers (pop3/wire.py, pop3/session.py).

RFC 1939 §3 message numbers and RFC 4616 §2 PLAIN responses: ``None`` for anything invalid, which
the session answers with ``-ERR``; never an exception.
"""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from sealmail.pop3 import session, wire

from .fuzzkit import fuzz


@fuzz()
@given(st.one_of(st.text(max_size=20), st.integers(-(10**12), 10**12).map(str)))
def test_message_numbers(text: str) -> None:
    number = wire.message_number(text)
    assert number is None or (number >= 0 and str(number) == text.lstrip("0").rjust(1, "0"))


@fuzz()
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(st.text(max_size=12), max_size=4).map(lambda p: base64.b64encode("\0".join(p).encode()).decode()),
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    )
)
def test_sasl_plain_responses(response: str) -> None:
    credentials = session._plain(response)
    assert credentials is None or (len(credentials) == 3 and credentials[1] and credentials[2])


@fuzz()
@given(st.binary(max_size=300), st.integers(0, 20), st.booleans())
def test_top_and_stuffing(message: bytes, count: int, utf8: bool) -> None:
    """TOP's split (RFC 1939 §7) and byte-stuffing (§3) of any stored message in its wire form: the
    response ends at its own "." line and nowhere before (else the client would stop early or hang)."""
    sent = wire.wire_message(message, utf8=utf8)
    header, body = wire.header_and_body(sent)
    assert header + body == sent
    assert body.startswith(wire.first_lines(body, count))
    for data in (sent, header + wire.first_lines(body, count)):
        stuffed = wire.multiline(data)
        assert stuffed == b".\r\n" or stuffed.endswith(b"\r\n.\r\n")
        assert b"\r\n.\r\n" not in stuffed[:-3]
        assert not stuffed[:-3].startswith(b".\r\n")
