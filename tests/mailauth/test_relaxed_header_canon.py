"""Relaxed header canonicalization exactly as RFC 6376 §3.4.2 has it (sealmail.mailauth.dkimcanon).

WSP is space and horizontal tab (RFC 5234 B.1). The relaxed rules delete WSP at the end of a value
and around the colon, and nothing else: a vertical tab (0x0B) or form feed (0x0C) at either end of a
value stays (dkimpy's ``bytes.strip()`` removed them, so our signatures failed elsewhere).
"""

from __future__ import annotations

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


def test_installed_rules_serve_dkim_and_arc_signing_and_verifying() -> None:
    """install() puts the RFC rules where dkimpy's DKIM and ARC code (sign and verify) looks them up."""
    dkimcanon.install()
    relaxed = dkim.canonicalization.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    assert relaxed.canonicalize_headers([(b"Subject", b" x\x0b\r\n")]) == [(b"subject", b"x\x0b\r\n")]
    assert dkim.RelaxedCanonicalization.canonicalize_headers is dkimcanon.relaxed_headers
