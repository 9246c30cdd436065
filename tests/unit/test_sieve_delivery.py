"""The pure parts of Sieve at delivery: an outcome made a plan, the vacation reply, the loop token.

The same behaviours run end to end over real sockets in ``tests/smtp/test_mx_sieve.py``; these
tables pin the cases that need no server (``:mime``, a ``:from`` at another domain, the copy limit).
"""

from __future__ import annotations

import email
import email.policy

import pytest

from sealmail.sieve.actions import Discard, FileInto, Keep, Outcome, Redirect, Reject, Vacation
from sealmail.smtp import autoreply, sieveloop
from sealmail.smtp.sieveplan import MAX_COPIES, REJECT_DEFAULT, plan, reject_reply
from sealmail.store.model import Filing, Placement


@pytest.mark.parametrize(
    ("actions", "keep_folder", "expected"),
    [
        pytest.param((Keep(),), "INBOX", Filing((Placement("INBOX"),)), id="RFC 5228 §2.10.2 implicit keep"),
        pytest.param((Keep(),), "Junk", Filing((Placement("Junk"),), "Junk"), id="keep of spam: Junk"),
        pytest.param(
            (Keep(("\\Seen",), named=True),), "Junk", Filing((Placement("INBOX", ("\\Seen",)),), "Junk"),
            id="fileinto INBOX wins over the verdict",
        ),
        pytest.param(
            (Keep(), FileInto("Lists", ("$List",), create=True, copy=True)),
            "INBOX",
            Filing((Placement("INBOX"), Placement("Lists", ("$List",), create=True))),
            id="RFC 3894 :copy with RFC 5232 :flags and RFC 5490 :create",
        ),
        pytest.param((Discard(),), "INBOX", None, id="RFC 5228 §4.4 discard stores nothing"),
        pytest.param((Redirect("a@b.test"),), "INBOX", None, id="RFC 5228 §4.2 redirect cancels the keep"),
    ],
)  # fmt: skip
def test_an_outcome_becomes_the_copies_to_seal(actions, keep_folder, expected) -> None:
    assert plan(Outcome(actions), "s", keep_folder).filing == expected


def test_a_failed_run_keeps_where_the_message_would_have_gone() -> None:
    found = plan(Outcome((Keep(),), error="more than 4 redirects", error_line=5), "s", "Junk")
    assert found.filing == Filing((Placement("Junk"),), "Junk")
    assert (found.error, found.error_line) == ("more than 4 redirects", 5)


def test_more_copies_than_the_limit_is_an_error_and_a_keep() -> None:
    many = tuple(FileInto(f"F{i}") for i in range(MAX_COPIES + 1))
    found = plan(Outcome(many), "s", "INBOX")
    assert found.filing == Filing((Placement("INBOX"),))
    assert found.error == f"more than {MAX_COPIES} fileinto for one message"


def test_a_redirect_that_looped_is_dropped_and_the_keep_comes_back() -> None:
    found = plan(Outcome((Redirect("a@b.test"),)), "s", "INBOX", looped=True)
    assert (found.redirects, found.filing, found.loop) == ((), Filing((Placement("INBOX"),)), True)
    copied = plan(Outcome((Keep(), Redirect("a@b.test", copy=True))), "s", "INBOX", looped=True)
    assert copied.filing == Filing((Placement("INBOX"),))  # the :copy's keep, once


def test_a_reject_stores_nothing() -> None:
    found = plan(Outcome((Reject("no"),)), "s", "INBOX")
    assert (found.filing, found.reject) == (None, Reject("no"))
    assert not found.discarded


@pytest.mark.parametrize(
    ("reason", "reply"),
    [
        ("Not here.", "550 5.7.1 Not here."),
        ("two\r\nlines", "550 5.7.1 two lines"),
        ("\x00\x1b\t", f"550 5.7.1 {REJECT_DEFAULT}"),
        ("Nicht hier — danke", "550 5.7.1 Nicht hier danke"),
        ("é" * 3, f"550 5.7.1 {REJECT_DEFAULT}"),
        ("x" * 600, "550 5.7.1 " + "x" * 200),
    ],
)
def test_rfc5429_2_1_1_the_reason_is_one_printable_line_of_the_reply(reason, reply) -> None:
    assert reject_reply(reason) == reply


def _vacation(**fields) -> Vacation:
    values = {
        "recipient": "coyote@b.test",
        "subject": "Away",
        "reason": "Back on Monday.",
        "mime": False,
        "days": 7,
        "handle": "h",
        "key": "k",
        "sender": None,
    }
    values.update(fields)
    return Vacation(**values)


HEAD = b"From: coyote@b.test\r\nMessage-ID: <m1@b.test>\r\nReferences: <m0@b.test>\r\n\r\n"


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        pytest.param(None, "me@example.test", id="no :from: the address the message came to"),
        pytest.param("Me <boss@example.test>", "Me <boss@example.test>", id="RFC 5230 §4.4 :from at our domain"),
        pytest.param("ceo@bank.example", "me@example.test", id=":from elsewhere would not align with DKIM"),
    ],
)
def test_rfc5230_the_reply_comes_from_an_address_of_the_alias_domain(sender, expected) -> None:
    assert autoreply.reply_from(_vacation(sender=sender), "me@example.test", "example.test") == expected


def test_rfc3834_the_reply_is_auto_submitted_and_threads_under_the_original() -> None:
    raw = autoreply.build(_vacation(subject="Auto: Über den Wolken"), HEAD, "me@example.test", "example.test")
    assert raw.isascii()  # RFC 2047 words: any next hop takes it
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied (vacation)"
    assert reply["In-Reply-To"] == "<m1@b.test>"
    assert reply["References"] == "<m0@b.test> <m1@b.test>"
    assert reply["Subject"] == "Auto: Über den Wolken"
    assert reply["To"] == "coyote@b.test"
    assert reply.get_content().strip() == "Back on Monday."
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_rfc5230_mime_sends_the_reason_as_the_mime_part_it_is() -> None:
    part = 'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAway\r\n--b--\r\n'
    raw = autoreply.build(_vacation(mime=True, reason=part), HEAD, "me@example.test", "example.test")
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply.get_content_type() == "multipart/alternative"
    assert reply["MIME-Version"] == "1.0"
    assert [p.get_content().strip() for p in reply.iter_parts()] == ["Away"]


def test_the_loop_token_names_the_alias_without_its_address() -> None:
    key = b"k" * 32
    field = sieveloop.field(key, "alias-1")
    assert field.startswith(b"Sealmail-Redirected: ")
    assert sieveloop.looped(field + HEAD, key, "alias-1")
    assert not sieveloop.looped(field + HEAD, key, "alias-2")
    assert not sieveloop.looped(HEAD, key, "alias-1")
    assert not sieveloop.looped(field + HEAD, b"other key" * 4, "alias-1")
