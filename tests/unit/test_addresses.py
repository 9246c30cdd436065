"""Address normalisation: IDNA 2008 / UTS 46 domains, EAI local parts (RFC 6531), alias names."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealmail.addresses import (
    compile_alias_pattern,
    normalize_domain,
    normalize_local,
    parse_alias_address,
    parse_mailbox,
    split_plus,
)
from sealmail.errors import InvalidInput


@pytest.mark.parametrize(
    ("given", "unicode", "ascii"),
    [
        ("example.test", "example.test", "example.test"),
        ("EXAMPLE.Test.", "example.test", "example.test"),
        ("universitéxyz.fr", "universitéxyz.fr", "xn--universitxyz-jeb.fr"),
        ("xn--universitxyz-jeb.fr", "universitéxyz.fr", "xn--universitxyz-jeb.fr"),
        ("UNIVERSITÉXYZ.FR", "universitéxyz.fr", "xn--universitxyz-jeb.fr"),
        ("bücher.example", "bücher.example", "xn--bcher-kva.example"),
        ("faß.de", "faß.de", "xn--fa-hia.de"),  # IDNA 2008, non-transitional: ß stays ß
    ],
)
def test_domain_has_both_forms(given: str, unicode: str, ascii: str) -> None:
    name = normalize_domain(given)
    assert (name.unicode, name.ascii) == (unicode, ascii)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "empty"),
        ("localhost", "two labels"),
        ("bad_name.test", "not allowed"),
        ("-lead.test", "hyphen"),
        ("a..b.test", "empty"),
        ("192.0.2.1", "IP address"),
        ("x" * 64 + ".test", "too long"),
        (".".join(["a" * 60] * 5), "too long"),
    ],
)
def test_invalid_domains_get_a_reason(given: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=f"(?i){reason}"):
        normalize_domain(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Demo", "demo"),
        ("rémi", "rémi"),
        ("re\u0301mi", "rémi"),  # decomposed é becomes the NFC form
        ("RÉMI", "rÉmi"),  # only ASCII letters fold
        ("first.last", "first.last"),
        ("user+tag", "user+tag"),
        ("用户", "用户"),
        ("o'brien", "o'brien"),
    ],
)
def test_local_parts_are_nfc_and_ascii_case_folded(given: str, expected: str) -> None:
    assert normalize_local(given) == expected


@pytest.mark.parametrize(
    "given",
    ["", ".lead", "trail.", "two..dots", "sp ace", "a@b", '"quoted"', "x" * 65, "é" * 33, "zero\u200bwidth", "tab\t"],
)
def test_invalid_local_parts_are_refused(given: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_local(given)


def test_rfc6531_address_parses() -> None:
    mailbox = parse_mailbox("Rémi@Universitéxyz.fr")
    assert mailbox.text == "rémi@universitéxyz.fr"
    assert mailbox.ascii_domain_text == "rémi@xn--universitxyz-jeb.fr"
    assert parse_mailbox("<rémi@xn--universitxyz-jeb.fr>") == mailbox


def test_plus_addressing_split() -> None:
    assert split_plus("user+tag") == ("user", "tag")
    assert split_plus("user+a+b") == ("user", "a+b")
    assert split_plus("user") == ("user", None)
    assert split_plus("+tag") == ("+tag", None)  # no base: not plus-addressing


def test_alias_forms() -> None:
    assert parse_alias_address("*@Example.test").kind == "catchall"
    regex = parse_alias_address("/^sales-.*$/@example.test")
    assert (regex.kind, regex.name) == ("regex", "/^sales-.*$/")
    exact = parse_alias_address("Rémi@universitéxyz.fr")
    assert (exact.kind, exact.name, exact.domain.ascii) == ("exact", "rémi", "xn--universitxyz-jeb.fr")


@pytest.mark.parametrize("pattern", ["/(a)\\1/", "/(?=x)y/", "/(?<!x)y/", "/[/", "//", "/x/g", "nope"])
def test_patterns_re2_cannot_guarantee_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="regex alias"):
        compile_alias_pattern(pattern)


def test_hostile_pattern_matches_in_linear_time() -> None:
    """(a+)+$ is catastrophic for backtracking engines; RE2 answers at once."""
    pattern = compile_alias_pattern("/^(a+)+$/")
    subject = "a" * 5000 + "!"
    start = time.perf_counter()
    assert pattern.search(subject) is None
    assert time.perf_counter() - start < 1.0  # a backtracking engine would not finish at all


@given(st.text(max_size=80))
def test_normalize_local_never_raises_anything_but_invalid_input(text: str) -> None:
    try:
        result = normalize_local(text)
    except InvalidInput:
        return
    assert normalize_local(result) == result  # normalising twice changes nothing


@given(st.text(max_size=80))
def test_normalize_domain_never_raises_anything_but_invalid_input(text: str) -> None:
    try:
        name = normalize_domain(text)
    except InvalidInput:
        return
    assert normalize_domain(name.ascii) == name
    assert normalize_domain(name.unicode) == name
