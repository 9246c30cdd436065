"""Issue 19: the MX keeps accepting for aliases it knows while the config store is away (RFC 5321
§4.2.5: a temporary failure is the alternative), with a bounded cache refreshed by every lookup."""

from __future__ import annotations

import pytest

from sealmail.errors import InvalidInput
from sealmail.smtp.lastknown import LastKnown


class Down(Exception):
    pass


def _down() -> str:
    raise Down("config store unreachable")


def test_the_last_answer_is_used_only_while_the_lookup_fails() -> None:
    known = LastKnown(size=2)
    assert known.through("a", lambda: "first") == "first"
    assert known.through("a", lambda: "fresh") == "fresh"  # refreshed by every successful lookup
    assert known.through("a", _down) == "fresh"
    with pytest.raises(Down):
        known.through("never-seen", _down)  # unknown: the caller answers 451


def test_it_is_bounded_and_ages_out() -> None:
    known = LastKnown(size=2, max_age=3600)
    for key in ("a", "b", "c"):
        known.through(key, lambda k=key: k)
    assert len(known) == 2
    with pytest.raises(Down):
        known.through("a", _down)  # the least recently used went first
    assert known.through("c", _down) == "c"
    stale = LastKnown(max_age=0.0)
    stale.through("a", lambda: "x")
    with pytest.raises(Down):
        stale.through("a", _down)


def test_a_wrong_question_is_not_answered_from_the_cache() -> None:
    known = LastKnown()
    known.through("a", lambda: "x")

    def invalid() -> str:
        raise InvalidInput("bad address")

    with pytest.raises(InvalidInput):
        known.through("a", invalid)
