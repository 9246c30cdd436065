"""Issue 19: the MX keeps accepting for aliases it knows while the config store is away (RFC 5321
§4.2.5: a temporary failure is the alternative), with a bounded cache refreshed by every lookup."""

from __future__ import annotations

import time

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


def test_a_fresh_answer_is_used_without_asking_again() -> None:
    """Where each lookup is a round trip to the data host (issue 19), an answer younger than
    ``fresh`` seconds is reused: a busy mailbox is looked up once per window, not per message."""
    asked: list[str] = []

    def lookup() -> str:
        asked.append("x")
        return f"answer {len(asked)}"

    known = LastKnown(fresh=0.3)
    assert known.through("a", lookup) == "answer 1"
    assert known.through("a", lookup) == "answer 1"
    assert len(asked) == 1
    time.sleep(0.35)
    assert known.through("a", lookup) == "answer 2"  # past the window: asked again
    never = LastKnown()  # fresh 0 (one host: the lookup is a local read): always asked
    never.through("a", lookup)
    never.through("a", lookup)
    assert len(asked) == 4


def test_lookups_are_reused_by_default_only_where_they_cross_to_another_host(settings) -> None:
    assert settings.mx_lookup_fresh == 0.0
    remote = settings.model_copy(update={"config_backend": "store", "store_url": "wss://data1.example:3456"})
    assert remote.mx_lookup_fresh == 5.0
    assert remote.model_copy(update={"mx_lookup_fresh_seconds": 0.0}).mx_lookup_fresh == 0.0
