"""Warnings (RFC 5804 §2.6 WARNINGS): valid scripts that a run could make fail, named by line."""

from __future__ import annotations

import pytest

from sealmail.sieve.actions import MAX_REDIRECTS
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.warnings import warnings

from sievekit import message, run, summary

FIVE = "".join(f'redirect "r{n}@example.org";\r\n' for n in range(5))


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(FIVE, ["line 5"], id="five-in-a-row"),
        pytest.param(
            FIVE.replace('redirect "r4', 'if false { redirect "r4') + "}\r\n", ["line 5"], id="fifth-in-an-if"
        ),
        pytest.param(FIVE.replace('redirect "r4', 'stop;\r\nredirect "r4'), [], id="stop-before-the-fifth"),
        pytest.param(
            'if true { redirect "a@x.org"; redirect "b@x.org"; stop; }\r\n'
            'elsif true { redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org"; }\r\n'
            'redirect "f@x.org";\r\nredirect "g@x.org";\r\n',
            ["line 4"],  # elsif (3) + the two after it; the if's branch stops at 2
            id="worst-branch-then-on",
        ),
        pytest.param(
            'if true { redirect "a@x.org"; redirect "b@x.org"; } else { redirect "c@x.org"; redirect "d@x.org"; }\r\n'
            'redirect "e@x.org";\r\n',
            [],  # one branch or the other: three at most
            id="branches-are-alternatives",
        ),
        pytest.param("keep;\r\n", [], id="nothing-to-say"),
    ],
)
def test_rfc5228_s2_10_6_more_redirects_than_a_run_may_make(script: str, expected: list[str]) -> None:
    found = warnings(compile_script(script))
    assert [w.split(":", 1)[0] for w in found] == expected
    assert all(f"more than {MAX_REDIRECTS} redirects" in w for w in found)


def test_the_warning_is_what_a_run_does() -> None:
    """A run reaching the fifth redirect is a run-time error: the message is kept (nothing redirected)."""
    assert warnings(compile_script(FIVE)) == [
        f"line 5: a run can reach more than {MAX_REDIRECTS} redirects; such a run fails and the message is kept in"
        " INBOX (RFC 5228 §2.10.6)"
    ]
    assert summary(run(FIVE, message())) == ("error@5", "keep")
