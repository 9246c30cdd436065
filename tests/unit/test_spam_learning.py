"""What a filing teaches (``spam.learning``) and what the controller's answers mean (``spam.rspamd``)."""

from __future__ import annotations

import pytest

from sealmail.spam.learning import signal
from sealmail.spam.rspamd import Learned, RspamdUnavailable, learn_answer


@pytest.mark.parametrize(
    ("source", "target", "taught"),
    [
        (None, "\\Junk", "spam"),  # INBOX (no special use) -> Junk
        ("\\Archive", "\\Junk", "spam"),
        ("\\Trash", "\\Junk", "spam"),  # rescued from Trash into Junk: still the user's verdict
        ("\\Junk", None, "ham"),
        ("\\Junk", "\\Archive", "ham"),
        ("\\Junk", "\\Trash", None),  # deleting junk says nothing of it
        ("\\Junk", "\\Junk", None),
        (None, None, None),
        ("\\Sent", "\\Trash", None),
        ("\\junk", "\\ARCHIVE", "ham"),  # RFC 6154 §2: attributes compare case-insensitively
        (None, "\\JUNK", "spam"),
        ("\\JUNK", "\\trash", None),
    ],
)
def test_rfc6154_special_uses_decide_the_class(source: str | None, target: str | None, taught: str | None) -> None:
    assert signal(source, target) == taught


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (200, Learned.LEARNED),
        (208, Learned.KNOWN),  # "has been already learned as ham, ignore it"
        (204, Learned.UNLEARNABLE),  # "contains less tokens than required"
        (400, Learned.UNLEARNABLE),  # "Empty body is not permitted"
        (413, Learned.UNLEARNABLE),
    ],
)
def test_controller_answers_that_finish_a_job(status: int, meaning: Learned) -> None:
    assert learn_answer(status) is meaning


@pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503])
def test_controller_answers_that_keep_the_job_for_later(status: int) -> None:
    """Not the message's fault (a wrong password, not a controller, busy, its Redis away): try again later."""
    with pytest.raises(RspamdUnavailable):
        learn_answer(status)
