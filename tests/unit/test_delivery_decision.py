"""The outbound delivery job, typed, and the pure retry/bounce decision (``smtp.deliveryjob``).

No servers: the decision is a function of the job, the attempt's result, the time and the schedule.
The worker's behaviour over real SMTP sessions is in ``tests/smtp/test_outbound.py`` and
``tests/smtp/test_dsn.py``.
"""

from __future__ import annotations

import pytest

from sealmail.queue.store import Job
from sealmail.smtp.deliveryjob import (
    AttemptResult,
    Bounce,
    DeliveryJob,
    Done,
    DsnParameters,
    Retry,
    RetrySchedule,
    decide,
)

DAY = 86400.0
SCHEDULE = RetrySchedule(base=300.0, max_backoff=4 * 3600.0, max_age=5 * DAY)
QUEUED_AT = 1_000_000.0


def _row(meta: dict, attempts: int = 1) -> Job:
    return Job("j1", "smtp", attempts, QUEUED_AT, meta, b"Subject: hi\r\n\r\nbody\r\n")


def _job(attempts: int = 1, mail_from: str = "alice@a.test", **dsn: str) -> DeliveryJob:
    meta = {"origin": "submission", "mail_from": mail_from, "rcpt_to": "bob@b.test", "alias": "alice@a.test"}
    if dsn:
        meta["dsn"] = dsn
    return DeliveryJob.from_job(_row(meta, attempts))


TEMP = AttemptResult("temporary", "451 4.3.0 try later", mx="mx.b.test", status="4.3.0")
PERM = AttemptResult("permanent", "550 5.1.1 No such user", mx="mx.b.test", status="5.1.1")


# ---- parsing the queue row: the stored shape stays as it is --------------------------------------
def test_a_submission_job_in_the_stored_shape_loads_with_every_field() -> None:
    meta = {
        "origin": "submission",
        "queue_id": "abc123",
        "mail_from": "alice@a.test",
        "rcpt_to": "bob@b.test",
        "alias": "alice@a.test",
        "smtputf8": False,
        "dsn": {"ret": "HDRS", "envid": "e-1", "notify": "FAILURE,SUCCESS", "orcpt": "rfc822;bob@b.test"},
    }
    job = DeliveryJob.from_job(_row(meta, attempts=3))
    assert (job.id, job.rcpt_to, job.mail_from, job.alias, job.origin, job.queue_id) == (
        "j1",
        "bob@b.test",
        "alice@a.test",
        "alice@a.test",
        "submission",
        "abc123",
    )
    assert (job.attempts, job.created_at, job.smtputf8) == (3, QUEUED_AT, False)
    assert job.dsn == DsnParameters("HDRS", "e-1", "FAILURE,SUCCESS", "rfc822;bob@b.test")
    assert job.dsn.notifies("SUCCESS")
    assert job.dsn.notifies("FAILURE")
    assert not job.dsn.notifies("DELAY")


def test_older_job_shapes_load_forwarded_copies_dsns_and_none_values() -> None:
    """Jobs queued before the type existed: no dsn, no smtputf8, no queue_id, None where a submission
    without RET/ENVID stored None."""
    forward = DeliveryJob.from_job(
        _row({"mail_from": "SRS0=x@a.test", "rcpt_to": "bob@b.test", "origin": "forward", "alias": "me@a.test"})
    )
    assert forward.dsn == DsnParameters()
    assert forward.smtputf8 is False
    assert forward.queue_id is None
    assert forward.sender == "me@a.test"
    report = DeliveryJob.from_job(_row({"origin": "dsn", "mail_from": "", "rcpt_to": "ü@b.test", "smtputf8": True}))
    assert report.mail_from == ""
    assert report.sender == ""
    assert report.needs_smtputf8
    bare = DeliveryJob.from_job(_row({"rcpt_to": "bob@b.test", "dsn": {"ret": None, "envid": None}}))
    assert bare.dsn == DsnParameters()
    assert bare.mail_from == ""
    assert bare.origin is None
    assert bare.dsn.mail_parameters() == []
    assert bare.dsn.rcpt_parameters() == []


def test_a_job_without_a_recipient_is_malformed() -> None:
    with pytest.raises(KeyError):
        DeliveryJob.from_job(_row({"mail_from": "alice@a.test"}))


def test_rfc6531_smtputf8_is_needed_when_flagged_or_when_an_envelope_address_is_not_ascii() -> None:
    assert not _job().needs_smtputf8
    assert _job(mail_from="rémi@a.test").needs_smtputf8
    assert DeliveryJob.from_job(_row({"rcpt_to": "b@b.test", "mail_from": "a@a.test", "smtputf8": True})).needs_smtputf8


def test_rfc3461_s4_dsn_parameters_go_on_to_the_next_hop_as_given() -> None:
    """§4.1-§4.4: NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL, relayed unchanged."""
    dsn = _job(ret="FULL", envid="q+2Bx", notify="DELAY,FAILURE", orcpt="rfc822;b@b.test").dsn
    assert dsn.mail_parameters() == ["RET=FULL", "ENVID=q+2Bx"]
    assert dsn.rcpt_parameters() == ["NOTIFY=DELAY,FAILURE", "ORCPT=rfc822;b@b.test"]


# ---- RFC 5321 §4.5.4.1: retry strategy ------------------------------------------------------------
def test_rfc5321_s4_5_4_1_a_temporary_failure_is_retried_later_with_growing_intervals() -> None:
    """§4.5.4.1: "mail that cannot be transmitted immediately MUST be queued and periodically
    retried by the sender"; "the retry interval SHOULD be at least 30 minutes; however, more
    sophisticated and variable strategies will be beneficial": here it doubles from the base (a
    setting), up to the schedule's longest wait."""
    now = QUEUED_AT + 60
    delays = []
    for attempts in range(1, 9):
        decision = decide(_job(attempts), TEMP, now, SCHEDULE)
        assert isinstance(decision, Retry)
        assert decision.at == now + decision.delay
        delays.append(decision.delay)
    assert delays[:4] == [300.0, 600.0, 1200.0, 2400.0]
    assert delays[-1] == SCHEDULE.max_backoff
    assert max(delays) == SCHEDULE.max_backoff


def test_rfc5321_s4_5_4_1_jitter_scales_the_delay_only() -> None:
    decision = decide(_job(2), TEMP, QUEUED_AT, SCHEDULE, jitter=1.1)
    assert isinstance(decision, Retry)
    assert decision.delay == pytest.approx(660.0)


def test_rfc5321_s4_5_4_1_the_sender_gives_up_after_the_limit_and_bounces_with_x_4_7() -> None:
    """§4.5.4.1: "retries continue until the message is transmitted or the sender gives up; the
    give-up time generally needs to be at least 4-5 days". Expired: RFC 3463 X.4.7, made permanent
    (5.4.7) because the report is a final failure (RFC 3464 §2.3.3)."""
    assert isinstance(decide(_job(30), TEMP, QUEUED_AT + 5 * DAY - 1, SCHEDULE), Retry)
    decision = decide(_job(30), TEMP, QUEUED_AT + 5 * DAY, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.reply == "gave up after 5.0 days: 451 4.3.0 try later"
    assert decision.report is not None
    assert (decision.report.action, decision.report.status) == ("failed", "5.4.7")
    assert decision.report.remote_mta == "mx.b.test"
    assert decision.report.diagnostic == decision.reply


def test_rfc5321_s4_5_4_1_a_permanent_failure_is_not_retried() -> None:
    decision = decide(_job(1), PERM, QUEUED_AT + 1, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.reply == PERM.reply
    assert decision.report is not None
    assert decision.report.status == "5.1.1"


# ---- RFC 3464 / RFC 3461: which reports are sent ------------------------------------------------
def test_rfc3464_s2_3_the_failure_report_names_the_recipient_the_remote_mta_and_the_original_recipient() -> None:
    """RFC 3464 §2.3: Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code; RFC 3461 §4.2:
    ORCPT is returned as Original-Recipient."""
    decision = decide(_job(orcpt="rfc822;bob@b.test"), PERM, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is not None
    r = decision.report
    assert (r.recipient, r.action, r.status, r.remote_mta, r.diagnostic, r.original_recipient) == (
        "bob@b.test",
        "failed",
        "5.1.1",
        "mx.b.test",
        "550 5.1.1 No such user",
        "rfc822;bob@b.test",
    )


def test_rfc3464_a_local_failure_names_no_remote_mta_and_an_odd_status_becomes_5_0_0() -> None:
    local = AttemptResult("permanent", "550 5.1.1 No such user here", mx="local", status="5.1.1")
    decision = decide(_job(), local, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is not None
    assert decision.report.remote_mta is None
    odd = AttemptResult("permanent", "554 odd", mx="mx.b.test", status="2.0.0")
    decision = decide(_job(), odd, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is not None
    assert decision.report.status == "5.0.0"


def test_rfc3461_s4_1_notify_never_asks_for_no_failure_report() -> None:
    decision = decide(_job(notify="NEVER"), PERM, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is None


def test_rfc3461_s4_1_without_notify_a_failure_is_reported() -> None:
    """§4.1: no NOTIFY means the default, FAILURE (and maybe DELAY)."""
    decision = decide(_job(), PERM, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is not None


def test_rfc5321_s6_1_a_message_from_the_null_sender_gets_no_report() -> None:
    """RFC 5321 §6.1 and RFC 3461 §6.2: never a DSN about a DSN (null reverse-path)."""
    decision = decide(_job(mail_from=""), PERM, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Bounce)
    assert decision.report is None


def test_rfc3461_s4_1_notify_success_gets_a_delivered_report_for_final_delivery_here() -> None:
    """§4.1 SUCCESS; for a remote host that took NOTIFY, that host reports (§4.2 relaying)."""
    local = AttemptResult("delivered", "250 2.0.0 delivered locally", mx="local", status="2.0.0")
    decision = decide(_job(notify="SUCCESS", orcpt="rfc822;bob@b.test"), local, QUEUED_AT, SCHEDULE)
    assert isinstance(decision, Done)
    assert decision.report is not None
    assert (decision.report.action, decision.report.status, decision.report.original_recipient) == (
        "delivered",
        "2.0.0",
        "rfc822;bob@b.test",
    )
    remote = AttemptResult("delivered", "250 ok", mx="mx.b.test", status="2.0.0")
    assert decide(_job(notify="SUCCESS"), remote, QUEUED_AT, SCHEDULE) == Done(None)
    assert decide(_job(notify="FAILURE"), local, QUEUED_AT, SCHEDULE) == Done(None)
