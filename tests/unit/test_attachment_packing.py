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


def reference_packing(data: bytes) -> str:
    """What ``pack`` chose when it encoded the decoded octets again and compared."""
    try:
        decoded = base64.b64decode(data.replace(b"\r\n", b""), validate=True)
    except ValueError:
        return attachments.ZLIB
    encoded = crlf_base64(decoded)
    if encoded == data:
        return attachments.BASE64
    if encoded[:-2] == data:
        return attachments.BASE64_OPEN
    return attachments.ZLIB


@st.composite
def base64_texts(draw: st.DrawFn) -> bytes:
    """The standard layout, or one changed where a hand-made encoder would differ: a line break
    moved, dropped or added, the final one dropped, the unused bits of the last group set."""
    size = draw(st.integers(0, 2_000))  # many lines as often as one
    text = crlf_base64(draw(st.binary(min_size=size, max_size=size)))
    change = draw(st.sampled_from(["none", "open", "move", "drop", "add", "bits", "short-lines"]))
    if change == "open" and text:
        return text[:-2]
    if change in ("move", "drop", "add") and text:
        plain = text.replace(b"\r\n", b"")
        cuts = sorted(set(range(76, len(plain), 76)) | {len(plain)})
        at = draw(st.integers(0, len(cuts) - 1))
        if change == "move":
            cuts[at] = max(0, cuts[at] - draw(st.integers(1, 4)))
        elif change == "drop":
            del cuts[at]
        else:
            cuts.insert(at, draw(st.integers(0, len(plain))))
        out, last = b"", 0
        for cut in sorted(cuts):
            out += plain[last:cut] + b"\r\n"
            last = cut
        return out + plain[last:]
    if change == "bits" and text.rstrip(b"\r\n").endswith(b"="):
        body = text.rstrip(b"\r\n")
        i = len(body.rstrip(b"=")) - 1
        swapped = body[:i] + (b"B" if body[i : i + 1] != b"B" else b"C") + body[i + 1 :]
        return swapped + text[len(body) :]
    if change == "short-lines":
        plain = text.replace(b"\r\n", b"")
        return b"".join(plain[i : i + 64] + b"\r\n" for i in range(0, len(plain), 64))
    return text


@given(base64_texts())
def test_packing_is_chosen_as_encoding_again_would_choose_it(text: bytes) -> None:
    """``pack`` decides from the line layout and the last group what re-encoding decided."""
    packing, stored = attachments.pack(text)
    assert packing == reference_packing(text)
    assert attachments.unpack(packing, stored) == text
