"""RFC 5051 ``i;unicode-casemap`` in Sieve (RFC 5228 §2.7.3: a comparator named in ``require``).

RFC 5051 §2 turns each string into its "titlecased canonicalized" form: every character replaced by
its simple titlecase mapping, then decomposed (NFKD); equality, substring and ordering are those of
the resulting UTF-8 octets (``i;octet``). The RFC has no worked examples, so the table below follows
those steps on the cases a user meets: accents, German, Turkish and Greek letters, compatibility
forms. What the steps imply and a reader may not expect is tested as such: the simple titlecase of
"ß" is "ß" itself (the full mapping "Ss" is SpecialCasing's, which RFC 5051 does not use), so
"Straße" never equals "STRASSE"; "İ" (dotted capital I) decomposes to "I" + U+0307 and equals no
"i"; an accented letter is its letter followed by the accent, so :contains "e" finds "é" and "é"
sorts right after "e".
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealmail.mime.collation import casemap
from sealmail.sieve import match
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError
from sealmail.sieve.grammar import CAPABILITIES
from sealmail.sieve.tree import Match

from sievekit import message, run, summary

REQUIRE = 'require ["comparator-i;unicode-casemap", "relational", "variables", "reject", "body"];\n'


def _is(value: str, key: str, match: str = ":is", comparator: str = "i;unicode-casemap") -> bool:
    """Whether ``header <match> :comparator <comparator> "Subject" <key>`` holds for Subject ``value``."""
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    script = REQUIRE + f'if header {match} :comparator "{comparator}" "Subject" "{quoted}" {{ discard; }}'
    return summary(run(script, message(Subject=value))) == ("discard",)


EQUALITY = [
    # (value, key, equal under i;unicode-casemap, equal under i;ascii-casemap)
    pytest.param("été", "ÉTÉ", True, False, id="French: é and É are one letter"),
    pytest.param("Notre Été", "notre été", True, False, id="accents and case together"),
    pytest.param("ete", "été", False, False, id="an accent is not nothing: e + U+0301 is not e"),
    pytest.param("Straße", "STRASSE", False, False, id="German: the simple titlecase of ß is ß, not SS"),
    pytest.param("Straße", "STRAßE", True, True, id="German: ß equals itself, the rest folds"),
    pytest.param("Straße", "strasse", False, False, id="German: nor ss"),
    pytest.param("ıstanbul", "ISTANBUL", True, False, id="Turkish: dotless ı titlecases to I"),
    pytest.param("İstanbul", "istanbul", False, False, id="Turkish: İ is I + U+0307, not i"),
    pytest.param("İstanbul", "i̇stanbul", True, False, id="Turkish: İ equals i + U+0307"),
    pytest.param("ΣΟΦΊΑ", "σοφία", True, False, id="Greek: capitals and small letters"),
    pytest.param("ΟΔΟΣ", "οδος", True, False, id="Greek: final sigma ς titlecases to Σ as σ does"),
    pytest.param("Ǆemal", "ǆemal", True, False, id="digraph: Ǆ and ǆ both titlecase to ǅ"),
    pytest.param("ＡＢＣ", "abc", True, False, id="compatibility: fullwidth letters decompose (NFKD)"),
    pytest.param("é", "e\u0301", True, False, id="precomposed and decomposed é are equal"),
    pytest.param("Hello", "hELLO", True, True, id="ASCII folds as under i;ascii-casemap"),
]


@pytest.mark.parametrize(("value", "key", "unicode", "ascii"), EQUALITY)
def test_rfc5051_2_equality(value: str, key: str, unicode: bool, ascii: bool) -> None:
    assert _is(value, key) is unicode
    assert _is(key, value) is unicode  # symmetric
    assert _is(value, key, comparator="i;ascii-casemap") is ascii


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        pytest.param("Un été chaud", "ÉTÉ", True, id="a folded key in a folded value"),
        pytest.param("été", "e", True, id="the letter under an accent is a substring"),
        pytest.param("İstanbul", "istanbul", False, id="U+0307 stands between I and S"),
        pytest.param("İstanbul", "STANBUL", True, id="the rest of the word"),
        pytest.param("Große Straße", "SSE", False, id="no ß becomes ss"),
        pytest.param("ΟΔΟΣ ΑΘΗΝΑΣ", "οδος", True, id="Greek in a longer value"),
        pytest.param("anything", "", True, id="the empty key is in every value"),
    ],
)
def test_rfc5051_2_substring(value: str, key: str, expected: bool) -> None:
    assert _is(value, key, ":contains") is expected


@pytest.mark.parametrize(
    ("value", "relation", "key", "expected"),
    [
        pytest.param("été", "lt", "f", True, id="é sorts with e, before f"),
        pytest.param("été", "gt", "ETE", True, id="and after the plain letters"),
        pytest.param("Zèbre", "gt", "élan", True, id="case does not order: Z after É"),
        pytest.param("ÉTÉ", "eq", "été", True, id="equal folded forms are eq"),
        pytest.param("Straße", "gt", "STRASSE", True, id="ß (U+00DF) after S"),
    ],
)
def test_rfc5051_2_ordering_with_rfc5231_value(value: str, relation: str, key: str, expected: bool) -> None:
    assert _is(value, key, f':value "{relation}"') is expected


def test_rfc5051_ordering_differs_from_octets() -> None:
    """i;octet puts "été" after every ASCII letter (é is U+00E9); RFC 5051 with the E's."""
    assert _is("été", "f", ':value "lt"', comparator="i;octet") is False
    assert _is("été", "f", ':value "lt"') is True


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        pytest.param("Un ÉTÉ chaud", "*été*", True, id="* around a folded key"),
        pytest.param("été", "?T?", True, id="? is one character, é with its accent"),
        pytest.param("é", "??", False, id="é is one character, not two"),
        pytest.param("é", "?", True, id="nor less than one"),
        pytest.param("été", "E*", True, id="a literal may end inside a decomposed character, as :contains"),
        pytest.param("été", "E?", False, id="but ? takes whole characters"),
        pytest.param("Straße", "STRA?E", True, id="ß is one character"),
        pytest.param("Straße", "STRA??E", False, id="not two"),
        pytest.param("a*", "A＊", True, id="a fullwidth asterisk is a literal * (NFKD), not a wildcard"),
        pytest.param("abc", "A＊", False, id="so it matches no other text"),
        pytest.param("a?c", "A\\?C", True, id="a quoted ? is a literal"),
        pytest.param("abc", "A\\?C", False, id="and no wildcard"),
    ],
)
def test_rfc5228_2_7_1_matches_with_rfc5051(value: str, pattern: str, expected: bool) -> None:
    assert _is(value, pattern, ":matches") is expected


def test_rfc5229_3_2_match_variables_are_the_values_own_characters() -> None:
    script = REQUIRE + (
        'if header :matches :comparator "i;unicode-casemap" "Subject" "*ÉTÉ*?" { reject "${1}|${2}|${3}"; }'
    )
    assert summary(run(script, message(Subject="Un été chaud!"))) == ("reject:Un | chaud|!",)
    script = REQUIRE + 'if header :matches :comparator "i;unicode-casemap" "Subject" "?T?" { reject "${1}${2}"; }'
    assert summary(run(script, message(Subject="ÉtÉ"))) == ("reject:ÉÉ",)


def test_address_and_body_tests_take_the_comparator() -> None:
    script = REQUIRE + (
        'if address :all :is :comparator "i;unicode-casemap" "from" "ZOÉ@EXEMPLE.FR" { discard; }'
        ' elsif body :text :contains :comparator "i;unicode-casemap" "GRÜẞE" { reject "body"; }'
    )
    assert summary(run(script, message(From="Zoé <zoé@exemple.fr>"))) == ("discard",)
    assert summary(run(script, message(body="Viele grüße\r\n"))) == ("keep",)  # ẞ is not ß's titlecase
    assert summary(run(script, message(body="VIELE GRÜẞE\r\n"))) == ("reject:body",)


def test_rfc5228_2_7_3_the_comparator_must_be_required() -> None:
    with pytest.raises(SieveError, match='needs require "comparator-i;unicode-casemap"') as caught:
        compile_script('keep;\nif header :is :comparator "i;unicode-casemap" "Subject" "x" { discard; }')
    assert caught.value.line == 2
    compile_script('require "comparator-i;unicode-casemap";\nif header :is :comparator "i;unicode-casemap" "a" "x" {}')
    assert "comparator-i;unicode-casemap" in CAPABILITIES  # ManageSieve's SIEVE capability is this list


def test_regex_refuses_the_comparator_rather_than_fold_a_pattern() -> None:
    """RE2's case-insensitive mode is not RFC 5051, and folding a pattern would change it ("\\d"
    titlecases to "\\D"): :regex takes i;octet and i;ascii-casemap only, as other Sieve servers do."""
    script = 'require ["regex", "comparator-i;unicode-casemap"];\nif header :regex :comparator "i;unicode-casemap" "a" "x" {}'
    with pytest.raises(SieveError, match="i;octet and i;ascii-casemap"):
        compile_script(script)


# ---- :matches against a plain reference -----------------------------------------------------------------
def _reference_matches(pattern: str, value: str) -> bool:
    """The semantics above, written the slow obvious way: the value is its characters' folded forms
    one after another; a literal takes one folded code point, "*" any run of them, "?" one whole
    character's form starting where a character starts."""
    flat = "".join(casemap(ch) for ch in value)
    starts = {0}
    for ch in value:
        starts.add(max(starts) + len(casemap(ch)))
    tokens: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch in "*?":
            tokens.append(ch)
        else:
            tokens.extend("=" + c for c in casemap(next(chars, "\\") if ch == "\\" else ch))

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(tokens):
            return j == len(flat)
        token = tokens[i]
        if token == "*":
            return any(at(i + 1, k) for k in range(j, len(flat) + 1))
        if token == "?":
            ends = sorted(s for s in starts if s > j)
            return j in starts and bool(ends) and at(i + 1, ends[0])
        return j < len(flat) and flat[j] == token[1] and at(i + 1, j + 1)

    return at(0, 0)


ALPHABET = st.sampled_from(["a", "E", "e", "é", "É", "\u0301", "ß", "S", "ǆ", "ﬁ", "İ", "ı", "Σ", "ς", "ＡＢＣ"])
PATTERN = st.lists(st.one_of(ALPHABET, st.sampled_from(["*", "?", "\\*", "\\?"])), max_size=6).map("".join)


@given(pattern=PATTERN, value=st.lists(ALPHABET, max_size=6).map("".join))
def test_rfc5228_2_7_1_matches_agrees_with_the_plain_reference(pattern: str, value: str) -> None:
    found, _ = match.test(Match("i;unicode-casemap", "matches", ""), [value], [pattern])
    assert found is _reference_matches(pattern, value)
