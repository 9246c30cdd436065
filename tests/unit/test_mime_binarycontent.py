"""Re-encoding appended binary content (RFC 3516 §4.4): lossless, and only where NUL forces it."""

from __future__ import annotations

import base64

import pytest

from sealmail import mime
from sealmail.mime.binarycontent import NotStorable, without_nul


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type: application/octet-stream\r\n",  # no encoding field: one is added
        b"Content-Transfer-Encoding:\r\n binary\r\nContent-Type: application/octet-stream\r\n",  # folded
        b"content-transfer-encoding: 8BIT\r\n",
    ],
)
def test_part_with_nul_becomes_base64_and_decodes_back(header: bytes) -> None:
    content = bytes(range(256)) * 3
    out = without_nul(b"Subject: x\r\n" + header + b"\r\n" + content)
    assert b"\x00" not in out
    parsed = mime.parse(out)
    assert parsed.root.encoding == "base64"
    assert mime.binary_bytes(out, parsed, "1") == content
    assert max(len(line) for line in out.split(b"\r\n")) <= 76
    assert base64.b64decode(out.split(b"\r\n\r\n", 1)[1]) == content


def test_message_without_nul_is_left_alone() -> None:
    raw = b"Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\xfe\r\n"
    assert without_nul(raw) is raw


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\x00b\r\n\r\nhello\r\n",  # in a header
        b"Content-Transfer-Encoding: base64\r\n\r\nAA\x00AA\r\n",  # inside content that is encoded already
    ],
)
def test_nul_no_encoding_can_carry(raw: bytes) -> None:
    with pytest.raises(NotStorable):
        without_nul(raw)
