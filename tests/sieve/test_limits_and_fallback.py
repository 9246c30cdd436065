"""A broken or hostile script never loses mail and never stalls delivery.

Each failure here ends the same way: the message kept in INBOX, the error (with its line) returned
for the delivery code to log and show the user.
"""

from __future__ import annotations

import time

from sealmail.sieve.actions import Keep
from sealmail.sieve.evaluate import Envelope, evaluate, evaluate_source

from sievekit import ME, SENDER, message, run, summary

ENVELOPE = Envelope(mail_from=SENDER, rcpt_to=ME, alias=ME, addresses=(ME,))


def test_a_script_with_a_syntax_error_keeps_delivering_to_inbox() -> None:
    """Issue 22: a stored script that does not compile delivers to INBOX and says why, with the line."""
    outcome = evaluate_source('require "fileinto";\nif header :is "Subject" {\n  discard;\n}\n', message(), ENVELOPE)
    assert outcome.actions == (Keep(),)
    assert outcome.error_line == 2
    assert outcome.error == "missing argument for command header"


def test_a_valid_stored_script_runs() -> None:
    outcome = evaluate_source("discard;", message(), ENVELOPE)
    assert summary(outcome) == ("discard",)


def test_rfc5228_2_10_6_redirects_are_capped() -> None:
    """Four redirects run; a fifth is a run-time error and nothing is sent."""
    four = "".join(f'redirect "u{i}@example.net";\n' for i in range(4))
    assert len(run(four).actions) == 4
    five = "".join(f'redirect "u{i}@example.net";\n' for i in range(5))
    assert summary(run(five)) == ("error@5", "keep")


def test_a_script_that_does_too_much_work_is_stopped() -> None:
    """Sieve has no loops, but many tests over many fields add up: the work is budgeted."""
    keys = ", ".join(f'"needle{i}"' for i in range(50))
    tests = "".join(f'if header :contains "Received" [{keys}] {{ discard; }}\n' for i in range(20))
    raw = message(Received=[f"from host{i}.example by mx.example; Mon, 7 Dec 2026 09:00:00 +0000" for i in range(100)])
    started = time.monotonic()
    outcome = run(tests, raw)
    assert time.monotonic() - started < 10
    assert summary(outcome)[1:] == ("keep",)
    assert outcome.error == "the script does too much work on this message"


def test_a_pathological_regex_runs_in_linear_time() -> None:
    """(a+)+$ backtracks for ever in a backtracking engine; RE2 answers at once."""
    script = 'require "regex";\nif header :regex "Subject" "^(a+)+$" { discard; }'
    started = time.monotonic()
    outcome = run(script, message(Subject="a" * 5000 + "!"))
    assert time.monotonic() - started < 5
    assert summary(outcome) == ("keep",)


def test_a_pathological_wildcard_runs_in_linear_time() -> None:
    script = 'if header :matches "Subject" "*a*a*a*a*a*a*a*a*a*a*a*a*b" { discard; }'
    started = time.monotonic()
    assert summary(run(script, message(Subject="a" * 5000))) == ("keep",)
    assert time.monotonic() - started < 5


def test_a_failing_callback_keeps_the_message() -> None:
    """The mailbox lookup fails (store unreachable): an internal error, and the message is kept."""

    def unreachable(name: str) -> bool:
        raise ConnectionError(name)

    from sealmail.sieve.compile import compile as compile_script

    script = compile_script('require "mailbox";\nif mailboxexists "Archive" { discard; }')
    outcome = evaluate(script, message(), ENVELOPE, mailbox_exists=unreachable)
    assert outcome.actions == (Keep(),)
    assert outcome.error == "internal error (ConnectionError)"


def test_run_time_errors_name_no_message_content() -> None:
    """Errors go to logs: they carry the script's words, never the message's."""
    outcome = run('require ["variables", "fileinto"];\nif header :matches "Subject" "*" { fileinto "${1}"; }')
    assert outcome.error == "fileinto: a mailbox that does not exist (add :create)"
    assert outcome.error_line == 2
    redirect = run('require "variables";\nif header :matches "From" "*" { redirect "${1}"; }')
    assert redirect.error == "redirect: not an email address"
