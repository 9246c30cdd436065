"""ENVELOPE text made from the stored JSON matches parsing it and serialising the values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealmail.imap import envelopes, wire
from sealmail.mime.imap import Adjacent
from sealmail.store import imapvalue

TEXT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    st.text(max_size=30),  # controls, quotes, backslashes, 8-bit text
    st.sampled_from(["", "a,b", "[x]", "null", "{n}", 'say "hi"', "back\\slash", "é", "x" * 1100]),
)
FIELD = st.one_of(st.none(), TEXT, st.binary(max_size=10))
ADDRESS = st.lists(FIELD, min_size=4, max_size=4)
ADDRESSES = st.one_of(st.none(), st.lists(ADDRESS, max_size=3), st.lists(ADDRESS, min_size=1, max_size=3).map(Adjacent))
ENVELOPE = st.tuples(FIELD, FIELD, *[ADDRESSES] * 6, FIELD, FIELD).map(list)


def general(stored: str, utf8: bool) -> str:
    return wire.envelope_text(imapvalue.loads(stored), utf8)


@given(ENVELOPE, st.booleans())
def test_the_stored_json_gives_the_same_text_as_the_values(envelope: list[object], utf8: bool) -> None:
    stored = imapvalue.dumps(envelope)
    assert envelopes.envelope_text(stored, utf8) == general(stored, utf8)


@pytest.mark.parametrize("utf8", [False, True])
def test_a_plain_envelope_takes_the_short_way(utf8: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    envelope = [
        "Mon, 1 Dec 2025 10:00:00 +0000",
        "Budget, [draft] null",
        [["Alice Martin", None, "alice", "example.org"]],
        [["Alice Martin", None, "alice", "example.org"]],
        [["Alice Martin", None, "alice", "example.org"]],
        [["Demo", None, "demo", "example.test"], [None, None, "b", "example.test"]],
        None,
        [],
        None,
        "<m1@example.org>",
    ]
    stored = imapvalue.dumps(envelope)
    assert envelopes.envelope_text(stored, utf8) == general(stored, utf8)  # learns the shape
    envelope[1] = "Café, x" * 200  # 8-bit and long: a literal
    envelope[2] = [["Bob", None, "bob", "example.org"]]
    stored = imapvalue.dumps(envelope)
    expected = general(stored, utf8)
    assert expected.startswith('("Mon, 1 Dec 2025 10:00:00 +0000" {1600}\r\nCafé, x')
    monkeypatch.setattr(imapvalue, "loads", None)  # the same shape again: no parsing
    assert envelopes.envelope_text(stored, utf8) == expected


def test_a_missing_envelope_is_nil() -> None:
    assert envelopes.envelope_text(None, False) == "NIL"
