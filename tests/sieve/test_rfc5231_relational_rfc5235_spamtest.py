"""RFC 5231 relational (:count, :value) and RFC 5235 spamtest/spamtestplus with the spam filter's score."""

from __future__ import annotations

import pytest

from sealmail.sieve.evaluate import Spam

from sievekit import message, run, summary

REQUIRE = 'require ["relational", "comparator-i;ascii-numeric", "fileinto"];\n'
RELATIONAL_MESSAGE = message(
    Received=["from http://www.example.com by b.example", "from a.example by www.example.com"],
    To="foo@example.com, baz@example.com",
    Cc="qux@example.com",
)

TESTS = [
    # RFC 5231 §7's examples on its message (2 Received, 2 To addresses, 1 Cc)
    ('address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]', True),
    ('address :count "ge" :comparator "i;ascii-numeric" ["to"] ["3"]', False),
    ('header :count "ge" :comparator "i;ascii-numeric" ["received"] ["2"]', True),
    ('header :count "ge" :comparator "i;ascii-numeric" ["received", "subject"] ["3"]', True),
    ('header :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]', False),
    ('header :count "eq" :comparator "i;ascii-numeric" "X-Absent" "0"', True),
    ('header :count "eq" :comparator "i;ascii-numeric" "X-Twice" "2"', True),  # equal values count each
    # :value with the default comparator orders text; with i;ascii-numeric, numbers
    ('header :value "gt" "Subject" "H"', True),
    ('header :value "lt" "Subject" "h"', False),  # i;ascii-casemap: "I HAVE..." > "H"
    ('header :value "lt" :comparator "i;ascii-numeric" "X-Priority" "3"', True),
    ('header :value "lt" :comparator "i;ascii-numeric" "X-Priority" "1"', False),
    ('header :value "ne" :comparator "i;ascii-numeric" "X-Absent" "1"', False),  # no value: false
    # RFC 4790 §9.1.1: a value without leading digits is positive infinity
    ('header :value "gt" :comparator "i;ascii-numeric" "Subject" "99999999"', True),
    ('header :value "eq" :comparator "i;ascii-numeric" "Subject" "no digits either"', True),
    ('header :is :comparator "i;ascii-numeric" "X-Priority" "02 (High)"', True),
]


@pytest.mark.parametrize(("test", "expected"), TESTS, ids=[t[0] for t in TESTS])
def test_rfc5231_relational(test: str, expected: bool) -> None:
    raw = RELATIONAL_MESSAGE.replace(b"\r\n\r\n", b"\r\nX-Priority: 2\r\nX-Twice: same\r\nX-Twice: same\r\n\r\n", 1)
    assert summary(run(REQUIRE + f"if {test} {{ discard; }}", raw)) == (("discard",) if expected else ("keep",))


RFC5231_EXAMPLE = (
    REQUIRE
    + """if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"] {
    fileinto "Priority";
} elsif address :count "gt" :comparator "i;ascii-numeric" ["to"] ["5"] {
    fileinto "SPAM";
} elsif address :value "gt" :all :comparator "i;ascii-casemap" ["from"] ["M"] {
    fileinto "From N-Z";
} else {
    fileinto "From A-M";
}
if allof (address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] ["1"],
          address :all :comparator "i;ascii-casemap" ["to", "cc"] ["me@foo.example.com"]) {
    fileinto "Only me";
}
"""
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(message(X_Priority="1"), ("fileinto:Priority",), id="priority"),
        pytest.param(message(To=", ".join(f"u{i}@example.com" for i in range(6))), ("fileinto:SPAM",), id="six To"),
        pytest.param(message(From="nobody@example.com"), ("fileinto:From N-Z",), id="from N-Z"),
        pytest.param(message(From="alice@example.com"), ("fileinto:From A-M",), id="from A-M"),
        pytest.param(
            message(From="alice@example.com", To="me@foo.example.com"),
            ("fileinto:From A-M", "fileinto:Only me"),
            id="only me",
        ),
    ],
)
def test_rfc5231_7_example(raw: bytes, expected: tuple[str, ...]) -> None:
    boxes = ("INBOX", "Priority", "SPAM", "From N-Z", "From A-M", "Only me")
    assert summary(run(RFC5231_EXAMPLE, raw, mailboxes=boxes)) == expected


SPAMTEST = """require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" {
    fileinto "INBOX.unclassified";
} elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" {
    fileinto "INBOX.spam-trap";
}
"""
SPAMTESTPLUS = """require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0" {
    fileinto "INBOX.unclassified";
} elsif spamtest :percent :value "ge" :comparator "i;ascii-numeric" "30" {
    fileinto "INBOX.spam-trap";
}
"""
SPAM_BOXES = ("INBOX", "INBOX.unclassified", "INBOX.spam-trap")


@pytest.mark.parametrize(
    ("script", "spam", "expected"),
    [
        pytest.param(SPAMTEST, None, "fileinto:INBOX.unclassified", id="RFC 5235 §3.1 not tested is 0"),
        pytest.param(SPAMTEST, Spam(score=0.5, threshold=6), "keep", id="RFC 5235 §3.1 ham is 1"),
        pytest.param(SPAMTEST, Spam(score=-3, threshold=6), "keep", id="RFC 5235 §3.1 a negative score is 1"),
        pytest.param(
            SPAMTEST, Spam(score=1.5, threshold=6), "fileinto:INBOX.spam-trap", id="RFC 5235 §3.1 ratio 1/4 is 3"
        ),
        pytest.param(SPAMTESTPLUS, None, "fileinto:INBOX.unclassified", id="RFC 5235 §3.2 :percent not tested is 0"),
        pytest.param(SPAMTESTPLUS, Spam(score=1.5, threshold=6), "keep", id="RFC 5235 §3.2 25 percent"),
        pytest.param(
            SPAMTESTPLUS, Spam(score=2, threshold=6), "fileinto:INBOX.spam-trap", id="RFC 5235 §3.2 33 percent"
        ),
    ],
)
def test_rfc5235_spamtest(script: str, spam: Spam | None, expected: str) -> None:
    assert summary(run(script, spam=spam, mailboxes=SPAM_BOXES)) == (expected,)


@pytest.mark.parametrize(
    ("score", "value", "percent"),
    [(0, "1", "0"), (3, "5", "50"), (5.99, "9", "100"), (6, "10", "100"), (40, "10", "100")],
)
def test_rfc5235_scale(score: float, value: str, percent: str) -> None:
    """1 (ham) .. 10 and 0 .. 100 percent, both "definitely spam" at the filter's Junk threshold."""
    script = f"""require ["spamtestplus", "relational", "comparator-i;ascii-numeric"];
if allof (spamtest :value "eq" :comparator "i;ascii-numeric" "{value}",
          spamtest :percent :value "eq" :comparator "i;ascii-numeric" "{percent}") {{ discard; }}
"""
    assert summary(run(script, spam=Spam(score=score, threshold=6))) == ("discard",)
