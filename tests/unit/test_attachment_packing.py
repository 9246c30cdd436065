"""Attachment bodies kept decoded come back as the exact base64 text they arrived as."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealmail.store import attachments


def crlf_base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@pytest.mark.parametrize("size", [0, 1, 2, 56, 57, 58, 114, 57 * 64 - 1, 57 * 64, 57 * 64 + 1, 57 * 128, 200_000])
def test_base64_lines_match_the_standard_encoder_at_every_block_edge(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    assert attachments.base64_lines(data[:size]) == crlf_base64(data[:size])


@given(st.binary(max_size=20_000))
def test_base64_lines_match_the_standard_encoder(data: bytes) -> None:
    assert attachments.base64_lines(data) == crlf_base64(data)


@given(st.binary(min_size=1, max_size=10_000))
def test_packed_bodies_unpack_to_what_was_packed(data: bytes) -> None:
    for text in (crlf_base64(data), crlf_base64(data)[:-2], base64.b64encode(data), data):
        assert attachments.unpack(*attachments.pack(text)) == text
