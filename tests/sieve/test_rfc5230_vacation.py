"""RFC 5230 vacation: the decision a script produces, and when no reply may go (RFC 3834 §2)."""

from __future__ import annotations

import pytest

from sealmail.sieve.actions import Vacation
from sealmail.sieve.message import Message
from sealmail.sieve.vacation import allowed, refusal, reply_key

from sievekit import ME, SENDER, message, run, summary


def decision(script: str, raw: bytes | None = None, **kw: object) -> Vacation:
    outcome = run(script, raw, **kw)  # type: ignore[arg-type]
    replies = [a for a in outcome.actions if isinstance(a, Vacation)]
    assert len(replies) == 1, (outcome, summary(outcome))
    return replies[0]


def test_rfc5230_example_with_if() -> None:
    """RFC 5230 §3: a vacation in each branch; the reply goes to the envelope sender, the mail is kept."""
    script = """require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}
"""
    assert summary(run(script)) == ("keep", "vacation")
    reply = decision(script)
    assert reply.reason == "I'm out -- call me at +1 304 555 0123"
    assert reply.recipient == SENDER
    assert reply.days == 7  # RFC 5230 §4.1's default
    assert reply.subject == "Auto: I have a present for you"  # RFC 5230 §4.3
    assert decision(script, message(Subject="cyrus is broken")).reason == "I'm out -- send mail to cyrus-bugs"


def test_rfc5230_days_and_addresses() -> None:
    """RFC 5230 §4.1 :days; §4.5 :addresses are the user's too, so mail to one of them is answered."""
    script = """require "vacation";
vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
   "I'm away until October 19.  If it's an emergency, call 911, I guess." ;
"""
    reply = decision(script, message(To="tjs@example.edu"))
    assert reply.days == 23
    assert summary(run(script, message(To="someone@else.example"))) == ("keep",)


@pytest.mark.parametrize(("days", "expected"), [("0", 1), ("1", 1), ("365", 60)])
def test_rfc5230_4_1_days_are_kept_within_the_site_limits(days: str, expected: int) -> None:
    assert decision(f'require "vacation";\nvacation :days {days} "away";').days == expected


def test_rfc5230_subject_from_mime_and_handle() -> None:
    """RFC 5230 §4.2 :handle, §4.3 :subject, §4.4 :from, :mime."""
    script = """require "vacation";
vacation :subject "Gone fishin'" :from "me-away@example.com" :handle "ran-away" :mime text:
Content-Type: text/plain; charset=utf-8

Having lots of fun! Back in a day or two!
.
;
"""
    reply = decision(script)
    assert (reply.subject, reply.sender, reply.handle, reply.mime) == (
        "Gone fishin'",
        "me-away@example.com",
        "ran-away",
        True,
    )
    assert reply.reason.startswith("Content-Type: text/plain")


def test_rfc5230_4_2_the_same_handle_shares_one_memory() -> None:
    """RFC 5230 §4.2's example: two reasons, one handle -> one "already answered" key."""
    script = """require "vacation";
if header :contains "subject" "lunch" {
    vacation :handle "ran-away" "I'm out and can't meet for lunch";
} else {
    vacation :handle "ran-away" "I'm out";
}
"""
    lunch = decision(script, message(Subject="lunch?"))
    other = decision(script)
    assert lunch.reason != other.reason
    assert lunch.key == other.key
    # without :handle, a different reason is a different reply
    a = decision('require "vacation"; vacation "one";')
    b = decision('require "vacation"; vacation "two";')
    assert a.key != b.key


def test_the_memory_key_names_no_address() -> None:
    """The once-per-sender memory stores an HMAC of (alias, sender, handle): no address in clear."""
    key = reply_key(b"secret", ME, SENDER, "h")
    assert key == reply_key(b"secret", ME.upper(), SENDER.upper(), "h")  # addresses compare without case
    assert key != reply_key(b"secret", ME, "other@example.net", "h")
    assert key != reply_key(b"other secret", ME, SENDER, "h")
    assert "coyote" not in key
    assert "@" not in key
    assert decision('require "vacation"; vacation "x";').key == reply_key(
        b"test secret", ME, SENDER, decision('require "vacation"; vacation "x";').handle
    )


NO_REPLY = [
    pytest.param(message(Auto_Submitted="auto-replied"), SENDER, "Auto-Submitted", id="RFC 3834 §2 Auto-Submitted"),
    pytest.param(
        message(Auto_Submitted="auto-generated; type=x"), SENDER, "Auto-Submitted", id="RFC 3834 §5 any value but no"
    ),
    pytest.param(message(Precedence="bulk"), SENDER, "Precedence", id="Precedence: bulk"),
    pytest.param(message(Precedence="list"), SENDER, "Precedence", id="Precedence: list"),
    pytest.param(message(Precedence="junk"), SENDER, "Precedence", id="Precedence: junk"),
    pytest.param(message(List_Id="<acme.lists.example.com>"), SENDER, "mailing list", id="RFC 2919 List-Id"),
    pytest.param(
        message(List_Unsubscribe="<mailto:leave@example.org>"), SENDER, "mailing list", id="RFC 2369 List-Unsubscribe"
    ),
    pytest.param(message(), "", "null return path", id="RFC 3834 §2 null return path"),
    pytest.param(message(), "MAILER-DAEMON@example.org", "program", id="RFC 5230 §4.6 MAILER-DAEMON"),
    pytest.param(message(), "owner-acme@example.org", "program", id="RFC 5230 §4.6 owner-"),
    pytest.param(message(), "acme-request@example.org", "program", id="RFC 5230 §4.6 -request"),
    pytest.param(message(), ME, "recipient", id="never to ourselves"),
    pytest.param(message(To="list@example.org"), SENDER, "not in To", id="RFC 5230 §4.5 not addressed to us"),
]


@pytest.mark.parametrize(("raw", "mail_from", "why"), NO_REPLY)
def test_rfc5230_4_5_no_reply(raw: bytes, mail_from: str, why: str) -> None:
    outcome = run('require "vacation";\nvacation "away";', raw, mail_from=mail_from)
    assert summary(outcome) == ("keep",)
    assert outcome.vacation_skipped is not None
    assert why in outcome.vacation_skipped
    assert not allowed(Message(raw), mail_from, [ME])


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(message(Auto_Submitted="no"), id="Auto-Submitted: no is a person"),
        pytest.param(message(To="friends: someone@example.org;", Cc=f"<{ME.upper()}>"), id="in Cc, any case"),
        pytest.param(message(To="x@example.org", Bcc=ME), id="in Bcc"),
    ],
)
def test_rfc5230_4_5_reply(raw: bytes) -> None:
    assert refusal(Message(raw), SENDER, [ME]) is None
    assert summary(run('require "vacation";\nvacation "away";', raw)) == ("keep", "vacation")


def test_no_reply_to_spam() -> None:
    """RFC 3834 §2: replies to spam reach forged senders; the spam filter's verdict stops them."""
    from sealmail.sieve.evaluate import Spam

    outcome = run('require "vacation";\nvacation "away";', spam=Spam(score=9, threshold=6))
    assert summary(outcome) == ("keep",)
    assert outcome.vacation_skipped == "message is spam"


def test_rfc5230_4_7_once_per_script_run_and_not_with_reject() -> None:
    """RFC 5230 §4.7 / RFC 5429 §2.1: vacation with reject is an error: the message is kept."""
    both = run('require ["vacation", "reject"];\nvacation "away";\nreject "no";')
    assert summary(both) == ("error@3", "keep")
    twice = run('require "vacation";\nvacation "a";\nvacation "b";')
    assert summary(twice) == ("error@3", "keep")
