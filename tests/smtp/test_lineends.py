"""Outgoing line endings (sealmail.smtp.lineends): signed bytes are the bytes DATA carries."""

from __future__ import annotations

import random

from aiosmtplib.protocol import normalize_message_line_endings

from sealmail.smtp.dkimsign import unambiguous
from sealmail.smtp.lineends import to_wire


def test_bare_cr_and_bare_lf_become_crlf_as_the_sending_library_sends_them_rfc5321_2_3_8() -> None:
    """RFC 5321 §2.3.8: lines end in CRLF; ours is byte for byte what aiosmtplib writes in DATA."""
    assert to_wire(b"a\rb\nc\r\n") == b"a\r\nb\r\nc\r\n"
    assert to_wire(b"no end") == b"no end\r\n"
    assert to_wire(b"a\r\r\n") == b"a\r\n\r\n"
    assert to_wire(b"") == b"\r\n"
    rng = random.Random(5321)
    pieces = [b"a", b"\r", b"\n", b"\r\n", b" ", b".", b"\xc3\xa9"]
    for _ in range(3000):
        text = b"".join(rng.choices(pieces, k=rng.randint(0, 40)))
        assert to_wire(text) == normalize_message_line_endings(text), text


def test_fields_with_vt_or_ff_are_not_signed_except_from_rfc6376_5_4() -> None:
    """Verifiers disagree on VT/FF at a value's ends; From is always signed (RFC 6376 §5.4)."""
    message = b"From: a@a.test\x0b\r\nSubject: \x0chi\r\nTo: b@b.test\r\n\r\nbody\r\n"
    assert unambiguous(message, [b"from", b"subject", b"to"]) == [b"from", b"to"]
