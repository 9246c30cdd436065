"""An outbound delivery job, typed, and the pure decision what follows one delivery attempt.

The queue stores a job's envelope as a meta dict (``queue.store``); ``DeliveryJob.from_job`` reads it
once, so the worker never looks keys up again. The stored shape stays what the writers
(``smtp.submission``, ``smtp.inbound``, the worker's own DSNs) put there: queued jobs from before
this type existed load as they are, and keys it does not know are ignored.

``decide`` is the retry/bounce policy and nothing else: given the job, the attempt's result, the
time and the retry schedule, it says done, retry (when) or bounce (with which report). It does no
I/O, so it is tested on its own (``tests/unit/test_delivery_decision.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sealmail.smtp.dsn import RecipientStatus

if TYPE_CHECKING:
    from sealmail.queue.store import Job

AttemptKind = Literal["delivered", "temporary", "permanent"]


@dataclass(frozen=True, slots=True)
class DsnParameters:
    """What the sender asked for with RFC 3461: RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT."""

    ret: str | None = None  # FULL or HDRS (§4.3)
    envid: str | None = None  # §4.4, as given (xtext)
    notify: str | None = None  # §4.1, as stored: NEVER or a sorted comma list of SUCCESS, FAILURE, DELAY
    orcpt: str | None = None  # §4.2, e.g. "rfc822;bob@b.test"

    @classmethod
    def from_meta(cls, value: Any) -> DsnParameters:
        """The ``dsn`` entry of a job's meta; absent (forwarded copies, DSNs, older jobs) means none."""
        if not isinstance(value, dict):
            return cls()
        return cls(
            ret=value.get("ret") or None,
            envid=value.get("envid") or None,
            notify=value.get("notify") or None,
            orcpt=value.get("orcpt") or None,
        )

    def notifies(self, keyword: str) -> bool:
        """Whether NOTIFY lists ``keyword`` (SUCCESS, FAILURE, DELAY, NEVER)."""
        if not self.notify:
            return False
        return keyword.upper() in {w.strip().upper() for w in self.notify.split(",")}

    def mail_parameters(self) -> list[str]:
        """ESMTP parameters for MAIL when the next hop supports DSN (RFC 3461 §4.3, §4.4)."""
        return [f"{name}={value}" for name, value in (("RET", self.ret), ("ENVID", self.envid)) if value]

    def rcpt_parameters(self) -> list[str]:
        """ESMTP parameters for RCPT when the next hop supports DSN (RFC 3461 §4.1, §4.2)."""
        return [f"{name}={value}" for name, value in (("NOTIFY", self.notify), ("ORCPT", self.orcpt)) if value]


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One queued copy for one recipient, as the worker needs it."""

    id: str
    rcpt_to: str
    mail_from: str  # "" for the null reverse-path (DSNs themselves)
    payload: bytes
    attempts: int  # including the one under way
    created_at: float  # when it was queued (Unix time): the retry limit counts from here
    alias: str | None = None  # the hosted address it is sent as or forwarded for
    origin: str | None = None  # submission, forward, dsn, doctor-alert
    queue_id: str | None = None
    smtputf8: bool = False
    dsn: DsnParameters = DsnParameters()

    @classmethod
    def from_job(cls, job: Job) -> DeliveryJob:
        """Parse the queue row; a job without ``rcpt_to`` is malformed (KeyError)."""
        meta = job.meta
        return cls(
            id=job.id,
            rcpt_to=meta["rcpt_to"],
            mail_from=meta.get("mail_from") or "",
            payload=job.payload,
            attempts=job.attempts,
            created_at=job.created_at,
            alias=meta.get("alias") or None,
            origin=meta.get("origin"),
            queue_id=meta.get("queue_id"),
            smtputf8=bool(meta.get("smtputf8")),
            dsn=DsnParameters.from_meta(meta.get("dsn")),
        )

    @property
    def sender(self) -> str:
        """Whom the log lines are about: the hosted alias, else the envelope sender."""
        return self.alias or self.mail_from

    @property
    def needs_smtputf8(self) -> bool:
        """RFC 6531: flagged at submission, or an envelope address that is not ASCII."""
        return self.smtputf8 or not (self.mail_from.isascii() and self.rcpt_to.isascii())


@dataclass(frozen=True, slots=True)
class AttemptResult:
    kind: AttemptKind
    reply: str
    mx: str | None = None  # the host that answered; "local" for a hosted domain
    tls: bool = False
    status: str = "4.0.0"  # enhanced status code (RFC 3463)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Exponential backoff: ``base`` doubling per attempt up to ``max_backoff``, for ``max_age`` seconds."""

    base: float
    max_backoff: float
    max_age: float


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered; ``report`` is a success DSN to send, when one is due."""

    report: RecipientStatus | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A temporary failure within the retry limit: try again ``delay`` seconds from now (at ``at``)."""

    delay: float
    at: float


@dataclass(frozen=True, slots=True)
class Bounce:
    """Given up: ``reply`` says why; ``report`` is the failure DSN to send, when one is due."""

    reply: str
    report: RecipientStatus | None = None


Decision = Done | Retry | Bounce


def decide(
    job: DeliveryJob, result: AttemptResult, now: float, schedule: RetrySchedule, jitter: float = 1.0
) -> Decision:
    """What follows an attempt (``jitter``, near 1, spreads retries of many jobs apart)."""
    null_sender = not job.mail_from or job.mail_from == "<>"  # RFC 5321 §6.1: never report to it
    if result.kind == "delivered":
        # RFC 3461 §4.1: SUCCESS asks for a "delivered" report; a remote host that took NOTIFY
        # reports it itself, so only final delivery here does.
        report = None
        if job.dsn.notifies("SUCCESS") and result.mx == "local" and not null_sender:
            report = RecipientStatus(job.rcpt_to, "delivered", "2.0.0", None, None, job.dsn.orcpt)
        return Done(report)
    age = now - job.created_at
    if result.kind == "temporary" and age < schedule.max_age:
        delay = min(schedule.max_backoff, schedule.base * 2 ** (job.attempts - 1)) * jitter
        return Retry(delay, now + delay)
    reply, status = result.reply, result.status
    if result.kind == "temporary":  # RFC 5321 §4.5.4.1: give up after the limit, and say so
        reply, status = f"gave up after {age / 86400:.1f} days: {result.reply}", "4.4.7"
    status = status if status[:1] in ("4", "5") else "5.0.0"
    if status.startswith("4"):
        status = "5" + status[1:]  # a failure is permanent once given up (RFC 3463 §3.5: X.4.7 expired)
    report = None
    if not job.dsn.notifies("NEVER") and not null_sender:  # RFC 3461 §4.1: NEVER asks for none
        remote = None if result.mx == "local" else result.mx
        report = RecipientStatus(job.rcpt_to, "failed", status, remote, reply, job.dsn.orcpt)
    return Bounce(reply, report)
