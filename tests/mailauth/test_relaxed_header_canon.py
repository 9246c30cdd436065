"""Relaxed header canonicalization exactly as RFC 6376 §3.4.2 has it (sealmail.mailauth.dkimcanon).

WSP is space and horizontal tab (RFC 5234 B.1). The relaxed rules delete WSP at the end of a value
and around the colon, and nothing else: a vertical tab (0x0B) or form feed (0x0C) at either end of a
value stays (dkimpy's ``bytes.strip()`` removed them, so our signatures failed elsewhere).
"""

from __future__ import annotations

import base64
import random

import dkim
import dkim.canonicalization
import pytest

from sealmail.mailauth import dkimcanon

RFC_CASES = [
    # (name, value as parsed, canonical name, canonical value)
    (b"Subject", b" hello\r\n", b"subject", b"hello\r\n"),
    (b"Subject", b"\t hello \t \r\n", b"subject", b"hello\r\n"),
    (b"Subject", b" \x0bhello\x0b\r\n", b"subject", b"\x0bhello\x0b\r\n"),
    (b"Subject", b"\x0chello\x0c \r\n", b"subject", b"\x0chello\x0c\r\n"),
    (b"Subject", b" \x0b hello \x0c \r\n", b"subject", b"\x0b hello \x0c\r\n"),
    (b"Subject", b" a \x0b\t b\r\n", b"subject", b"a \x0b b\r\n"),
    (b"SUBJECT \t", b" x\r\n", b"subject", b"x\r\n"),  # WSP before the colon
    (b"Subject\x0b", b" x\r\n", b"subject\x0b", b"x\r\n"),  # only WSP goes before the colon too
    (b"Subject", b" long\r\n\tfolded\r\n  value\r\n", b"subject", b"long folded value\r\n"),
    (b"Subject", b"\r\n", b"subject", b"\r\n"),
    (b"Subject", b" \xc3\xa7a va \r\n", b"subject", b"\xc3\xa7a va\r\n"),
]


@pytest.mark.parametrize(("name", "value", "cname", "cvalue"), RFC_CASES)
def test_relaxed_header_canonicalization_removes_only_wsp_rfc6376_3_4_2(name, value, cname, cvalue) -> None:
    """RFC 6376 §3.4.2: lowercase name, unfold, WSP runs to SP, delete WSP at the value's end and around ':'."""
    assert dkimcanon.relaxed_headers([(name, value)]) == [(cname, cvalue)]


def test_relaxed_headers_are_dkimpys_bytes_on_ordinary_fields() -> None:
    """Where no VT/FF/CR sits at a value's ends, the output is dkimpy's own, byte for byte."""
    rng = random.Random(6376)
    alphabet = [b" ", b"  ", b"\t", b"a", b"word", b"\r\n ", b"\r\n\t", b"\xc3\xa9", b";", b"\x0b", b"\x0c"]
    names = [b"Subject", b"FROM", b"x-Custom ", b"To\t"]
    fields = []
    for _ in range(3000):
        value = b"".join(rng.choices(alphabet, k=rng.randint(0, 30))) + b"\r\n"
        fields.append((rng.choice(names), value))
    ordinary = [f for f in fields if f[1].strip(b" \t\r\n")[:1] not in (b"\x0b", b"\x0c")]
    ordinary = [f for f in ordinary if f[1].rstrip(b" \t\r\n")[-1:] not in (b"\x0b", b"\x0c")]
    assert len(ordinary) > 1000
    assert dkimcanon.relaxed_headers(ordinary) == dkimcanon.pure_relaxed_headers(ordinary)


def test_our_rules_serve_dkim_and_arc_signing_and_verifying_rfc6376_3_4_2() -> None:
    """Our DKIM and ARC classes (sign and verify) canonicalize by the RFC: a signed Subject ending in VT
    verifies with them, and not with dkimpy as shipped (which strips the VT) — the override is in use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from sealmail.mailauth import dkimsigner

    relaxed = dkimcanon.policy(b"relaxed/relaxed")
    assert relaxed.canonicalize_headers([(b"Subject", b" x\x0b\r\n")]) == [(b"subject", b"x\x0b\r\n")]
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"s._domainkey.sender.test." else b""

    message = b"From: a@sender.test\r\nSubject: x\x0b\r\n\r\nbody\r\n"
    signed = (
        dkimsigner.sign(
            message,
            b"s",
            b"sender.test",
            base64.b64encode(seed),
            include_headers=[b"from", b"subject"],
            signature_algorithm=b"ed25519-sha256",
        )
        + message
    )
    assert dkimsigner.Dkim(signed).verify(dnsfunc=dns)
    assert not dkim.DKIM(signed).verify(dnsfunc=dns)
    # ARC reads its fields with the same rules (RFC 8617 §4.1.3 uses relaxed header canonicalization).
    arc = b"ARC-Seal: i=1; cv=none; b=x\x0b\r\n" + message
    assert dkimsigner.Arc(arc).sorted_arc_headers() == (1, [(1, (b"arc-seal", b"i=1; cv=none; b=x\x0b\r\n"))])
    assert dkim.ARC(arc).sorted_arc_headers() == (1, [(1, (b"arc-seal", b"i=1; cv=none; b=x\r\n"))])
