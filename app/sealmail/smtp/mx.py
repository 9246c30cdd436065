"""The inbound MX: ``sealmail serve mx``.

Recipients are checked at RCPT time, never after DATA (RFC 5321 §3.3): unknown local part
``550 5.1.1``, a domain we do not host ``550 5.7.1`` (never an open relay), a disabled alias its
configured reply, a full mailbox ``552 5.2.2``. The one exception: an address in our SRS format
(a bounce of mail we forwarded) is taken at RCPT when well-formed, and its hash and age are checked
after DATA (``550 5.7.1``), so RCPT replies cannot be used to guess SRS hashes. After DATA the sender is authenticated (SPF, DKIM,
DMARC, ARC, recorded in one Authentication-Results header) and, when ``rspamd_url`` is set, the
message is scanned by rspamd at the same time (``sealmail.spam``): its verdict, with each
recipient domain's own thresholds, may refuse it (``550 5.7.1``), defer it (``451 4.7.1``) or send
it to Junk for some recipients (``spam.policy.decide_message``). Mail to the report addresses the
app publishes (the ``rua`` of its DMARC and TLS-RPT records) is read for DMARC and TLS reports
before anything is sealed (``smtp.reportintake``). rspamd is told the client's host
name when it is forward-confirmed (``net.fcrdns``, looked up from MAIL on, beside the transaction);
without one rspamd looks up the PTR itself. Then every action of every recipient alias is made
durable before the ``250``, each alias's Sieve script having decided its part first (read at RCPT,
run after DATA; a message every recipient's script rejects gets ``550 5.7.1`` and the script's
reason, RFC 5429 §2.1.1); the spam filter's daily numbers are counted in memory and added to the
config store every few seconds (``smtp.spamstats``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Protocol

from sealmail.appcontext import AppContext
from sealmail.config.models import Alias, Domain
from sealmail.errors import InvalidInput
from sealmail.mailauth.srs import InvalidSrs, Srs, is_srs
from sealmail.net.drain import DrainFlag
from sealmail.net.listen import BACKLOG, bound_port, listen_sockets, serve_each
from sealmail.net.tls import ServerTLS
from sealmail.queue.service import open_queue
from sealmail.services.credentials import quota_of
from sealmail.services.resolve import Resolution, resolve
from sealmail.smtp.dataread import Pieces, after
from sealmail.smtp.dataread import head as first_bytes
from sealmail.smtp.forwarding import ForwardRewriter, load_srs
from sealmail.smtp.inbound import InboundDelivery, Target, dedup_keys
from sealmail.smtp.mxprocs import MxProcesses
from sealmail.smtp.outbox import HandOver, Outbox
from sealmail.smtp.protocol import ConnectionBook, SealmailSMTP
from sealmail.smtp.reportintake import MIXED_REPLY, ReportIntake, is_report_address
from sealmail.smtp.sieverun import ScriptLookup
from sealmail.smtp.spamstats import SpamStats
from sealmail.spam.policy import OFF, MessageSpam, Thresholds, spam_fields_cut
from sealmail.spam.rspamd import ScanRequest
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from sealmail.settings import Settings

log = logging.getLogger("sealmail.mx")
FCRDNS_WAIT = 2.0  # seconds DATA waits for the client's FCrDNS name past the end of the data
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What sender authentication concluded about one message."""

    header: str  # the Authentication-Results field (name and value), without CRLF
    reject: str | None = None  # an SMTP reply when policy says refuse (DMARC p=reject)
    junk: bool = False  # deliver to Junk (DMARC p=quarantine, or reject downgraded by settings)
    # Forged Authentication-Results cut out, when there were any: the message without them is
    # ``strip[0]`` followed by the received message from offset ``strip[1]`` on.
    strip: tuple[bytes, int] | None = None


class SenderChecks(Protocol):
    async def check(self, *, peer_ip: str, helo: str, mail_from: str, message: Pieces) -> Verdict: ...


class SpamScanner(Protocol):
    async def scan(
        self, message: Pieces, request: ScanRequest, domains: Mapping[str, Thresholds | None]
    ) -> MessageSpam: ...

    async def close(self) -> None: ...


def _message_id(raw: Pieces) -> str | None:
    head = first_bytes(raw, 65536)
    end = head.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(head if end < 0 else head[:end])
    return match.group(1).decode("utf-8", "replace") if match else None


class MxSMTP(SealmailSMTP):
    """The MX's sessions: no AUTH (RFC 4954 §1: that is submission's, RFC 6409 §4.3), so no
    password is ever checked here and no session is more trusted than another."""

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        await self.push("502 5.5.1 AUTH is not available here, use the submission port")


class MxHandler:
    def __init__(
        self,
        app: AppContext,
        inbound: InboundDelivery,
        checks: SenderChecks,
        spam: SpamScanner | None = None,
        stats: SpamStats | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.inbound = inbound
        self.checks = checks
        self.spam = spam
        self.stats = stats
        self.srs = load_srs(app.settings)
        self.reports = ReportIntake(app)
        self._resolver: Any = None  # for the client's FCrDNS name, made when first asked

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # RFC 4954 §1, RFC 6409 §4.3: AUTH belongs to submission. aiosmtpd offers its built-in
        # mechanisms once TLS is up; an MX offers none (``MxSMTP`` refuses the command too).
        responses = [line for line in responses if not line[4:].upper().startswith("AUTH")]
        # aiosmtpd handles pipelined commands in order; say so (RFC 2920), and that replies carry
        # enhanced status codes (RFC 2034).
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if address not in ("", "<>"):
            from sealmail.addresses import parse_mailbox

            try:
                parse_mailbox(address, fold_case=False)
            except InvalidInput:
                return "553 5.1.7 Bad sender address syntax"
        envelope.mail_from = address  # aiosmtpd spells the null reverse-path "<>" (and needs it non-empty)
        envelope.mail_options.extend(mail_options)
        envelope.sealmail_targets = []  # type: ignore[attr-defined]
        envelope.sealmail_srs = []  # type: ignore[attr-defined]
        envelope.sealmail_reporting = None  # type: ignore[attr-defined]  # True: report addresses only
        envelope.sealmail_size = _declared_size(mail_options)  # type: ignore[attr-defined]
        if self.spam is not None and getattr(session, "sealmail_rdns", None) is None and session.peer:
            # Looked up while RCPT and DATA go on; DATA waits for it only if DNS is slower than both.
            lookup = asyncio.create_task(self._client_name(str(session.peer[0])), name="sealmail-mx-fcrdns")
            session.sealmail_rdns = lookup  # type: ignore[attr-defined]
        return "250 2.1.0 Sender ok"

    async def _client_name(self, ip: str) -> str | None:
        from sealmail.net.dns import make_resolver
        from sealmail.net.fcrdns import confirmed_name

        if self._resolver is None:
            self._resolver = make_resolver(self.settings)
        return await confirmed_name(self._resolver, ip)

    async def handle_RCPT(  # noqa: N802, PLR0911 - aiosmtpd's hook name; one reply per RFC case
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if rcpt_options:
            return "555 5.5.4 RCPT TO parameters not recognized"
        targets: list[Target] = getattr(envelope, "sealmail_targets", [])
        if len(envelope.rcpt_tos) >= self.settings.mx_max_recipients:
            return "452 4.5.3 Too many recipients"  # RFC 5321 §4.5.3.1.10
        try:
            result, mailbox_reply, script = await asyncio.to_thread(
                self._lookup_recipient, address, getattr(envelope, "sealmail_size", 0)
            )
        except InvalidInput:
            return "553 5.1.3 Bad recipient address syntax"
        except Exception:  # the config store or the spool failed: the sender tries again later
            log.exception("could not look up recipient")
            return "451 4.3.0 Temporary local problem, please try again"
        if not result.hosted:
            return "550 5.7.1 Relaying denied: this server does not host that domain"
        alias = result.alias
        report_reply = self._report_recipient(envelope, targets, address, result)
        if report_reply is not None:
            return report_reply
        if is_srs(result.mailbox.local):
            # A bounce of mail we forwarded. Only its form is checked here; whether the hash is ours
            # and fresh is answered after DATA (``_check_srs``), so RCPT replies are no oracle for
            # guessing hashes (RFC 5321 §3.3 lets a server accept a recipient it checks later).
            try:
                parsed = Srs.parse(address)
            except InvalidSrs:
                return "550 5.1.1 Invalid SRS address"
            alias = Alias(domain=result.mailbox.domain.ascii, kind="exact", name=result.mailbox.local, recipients=[])
            envelope.rcpt_tos.append(address)
            targets.append(Target(address, alias, thresholds=_thresholds(result.domain)))
            pending: list[tuple[int, Any]] = getattr(envelope, "sealmail_srs", [])
            pending.append((len(targets) - 1, parsed))
            envelope.sealmail_srs = pending  # type: ignore[attr-defined]
            return "250 2.1.5 Recipient ok"
        if alias is None:
            return "550 5.1.1 No such user here"
        if not alias.enabled:
            return self._disabled(envelope, targets, address, alias)
        if mailbox_reply is not None:
            return mailbox_reply
        if not alias.storage and not alias.recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        targets.append(Target(address, alias, thresholds=_thresholds(result.domain), sieve=script))
        return "250 2.1.5 Recipient ok"

    def _report_recipient(
        self, envelope: Envelope, targets: list[Target], address: str, result: Resolution
    ) -> str | None:
        """The reply to a report address (``smtp.reportintake``), or None for another recipient.

        A report address is taken with or without an alias of that name, as reports go to the config
        store; a message that carries none reaches the alias, if there is a usable one (``drop``:
        there is none to reach). The two kinds never share a transaction (``MIXED_REPLY``)."""
        reporting = is_report_address(self.settings, result.mailbox, result.hosted)
        if getattr(envelope, "sealmail_reporting", None) not in (None, reporting):
            return MIXED_REPLY
        envelope.sealmail_reporting = reporting  # type: ignore[attr-defined]
        if not reporting:
            return None
        alias = result.alias
        usable = alias is not None and alias.enabled and (alias.storage or bool(alias.recipients))
        if alias is None or not usable:
            alias = Alias(domain=result.mailbox.domain.ascii, kind="exact", name=result.mailbox.local, recipients=[])
        envelope.rcpt_tos.append(address)
        targets.append(Target(address, alias, drop=not usable, thresholds=_thresholds(result.domain)))
        return "250 2.1.5 Recipient ok"

    @staticmethod
    def _disabled(envelope: Envelope, targets: list[Target], address: str, alias: Alias) -> str:
        """A disabled alias answers as configured: defer (4xx), reject (5xx), or accept and drop."""
        if alias.disabled_reply == "defer":
            return "450 4.2.1 Mailbox disabled, try again later"
        if alias.disabled_reply == "reject":
            return "550 5.2.1 Mailbox disabled, not accepting messages"
        envelope.rcpt_tos.append(address)
        targets.append(Target(address, alias, drop=True))
        return "250 2.1.5 Recipient ok"

    def _check_srs(self, envelope: Envelope, targets: list[Target]) -> str | None:
        """Check the SRS recipients taken at RCPT time; each good one is sent back to its original sender.

        A wrong hash and an expired address get the same ``550 5.7.1``, for the whole transaction
        (RFC 5321 §4.2.5: one reply after DATA). Bounces carry one recipient; a message naming a
        forged SRS address beside real ones is refused with them, which costs honest senders
        nothing and gives a guesser one answer per transaction.
        """
        for index, parsed in getattr(envelope, "sealmail_srs", []):
            try:
                original = self.srs.check(parsed)
            except InvalidSrs:
                return "550 5.7.1 Invalid or expired SRS address"
            target = targets[index]
            targets[index] = Target(target.address, replace(target.alias, recipients=[original]))
        return None

    def _lookup_recipient(self, address: str, declared_size: int) -> tuple[Resolution, str | None, ScriptLookup | None]:
        """Resolve a recipient and, for an enabled mailbox, check it can take the message and read
        its active Sieve script (run after DATA, ``inbound``).

        One trip to a worker thread per RCPT (config store and spool are blocking SQLite).
        """
        known = self.inbound.known  # the last answers, used while the config store is away
        result = known.through(("resolve", address), lambda: resolve(self.app.config, address))
        alias = result.alias
        reply = script = None
        if alias is not None and alias.enabled and alias.storage and not is_srs(result.mailbox.local):
            reply = self._mailbox_reply(alias, declared_size)
            if reply is None:
                script = self.inbound.sieve_lookup(alias)
        return result, reply, script

    def _mailbox_reply(self, alias: Any, declared_size: int) -> str | None:
        """The RCPT reply a mailbox alias needs, if any (on a worker thread: config store and spool)."""
        credential = self.inbound.known.through(
            ("credential", alias.id), lambda: self.app.config.get_credential(alias.id)
        )
        if credential is None or not credential.has_keys:
            # The mailbox has no keys until its password is set: mail must wait, not vanish.
            return "450 4.2.0 Mailbox not set up yet, try again later"
        assert credential.mailbox_id is not None
        try:
            mailbox_id = credential.mailbox_id
            pending = self.inbound.known.through(
                ("spool", mailbox_id), lambda: self.app.mailstore.spool_size(mailbox_id)
            )
        except StoreUnavailable:
            pending = 0  # the data host is away: the MX holds the mail (smtp.outbox), the quota counts what it knows
        used = (credential.usage_bytes or 0) + pending
        if used + declared_size > quota_of(alias, self.settings):
            return "552 5.2.2 Mailbox full"
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        try:
            return await self._data(session, envelope)
        except Exception:  # a check or a store that failed unexpectedly: nothing was accepted, try again
            log.exception("could not take a message")
            return "451 4.3.0 Temporary local problem, please try again"

    async def _data(self, session: Session, envelope: Envelope) -> str:
        # Bare LF and bare CR (RFC 5321 §2.3.8: neither ends a line) are taken, not refused with
        # 550 5.5.2: their senders are real and their users cannot fix them. Only <CRLF>.<CRLF>
        # ended the data (``smtp.dataread``), so they are no smuggling path. The message is kept
        # byte for byte: a DKIM signature made over those bytes still verifies, the mailbox gets
        # what was sent, and the forwarding path makes the line ends CRLF (``smtp.lineends``).
        # The message is the chunks DATA was read in (``smtp.protocol``): none of what follows joins
        # or copies it (the checks get it in slices, the trace headers go before it as a piece of
        # their own, sealing works segment by segment), so it is held once.
        raw: Pieces = envelope.original_content or []  # type: ignore[assignment]
        targets: list[Target] = getattr(envelope, "sealmail_targets", [])
        message_id = _message_id(raw)
        peer_ip = str(session.peer[0]) if session.peer else "?"
        srs_refusal = self._check_srs(envelope, targets)
        if srs_refusal is not None:
            await self.app.log_event(_log_entry("rejected", targets, message_id, peer_ip, srs_refusal))
            return srs_refusal
        # Sender checks, the spam scan and the question whether a retry already reached some
        # aliases, at once: the scan waits on rspamd over HTTP, the checks in worker processes.
        keys = dedup_keys(raw, targets)
        queue_id = secrets.token_hex(6)
        mail_from = envelope.mail_from or ""
        verdict, already, spam = await asyncio.gather(
            self.checks.check(peer_ip=peer_ip, helo=session.host_name or "", mail_from=mail_from, message=raw),
            self.inbound.already_delivered(raw, targets, keys),
            self._scan(raw, session, mail_from, targets, queue_id, peer_ip, getattr(envelope, "smtp_utf8", False)),
        )
        refusal = verdict.reject or spam.reply  # the sender's own domain's policy speaks first
        if self.stats is not None:
            self.stats.tally.note(spam)
        if refusal:
            status = "deferred" if refusal.startswith("4") else "rejected"
            await self.app.log_event(
                _log_entry(status, targets, message_id, peer_ip, refusal)  # one line per refusal
            )
            return refusal
        if getattr(envelope, "sealmail_reporting", None):
            answer = await self._reports(raw, verdict.header, peer_ip, message_id, targets)
            if answer is not None:
                return answer
        body = [verdict.strip[0], *after(raw, verdict.strip[1])] if verdict.strip is not None else list(raw)
        if self.spam is not None:
            body = _without_spam_fields(body)
        trace = self._trace_headers(session, envelope, queue_id, targets) + verdict.header.encode() + b"\r\n"
        message = [trace, *body]  # each recipient's X-Spam-* fields go after the trace (``inbound``)
        outcome = await self.inbound.deliver(
            message,
            mail_from=envelope.mail_from or "",
            targets=targets,
            original=raw,
            junk=verdict.junk,
            spam=spam if self.spam is not None else None,
            message_id=message_id,
            peer=peer_ip,
            already=already,
            keys=keys,
            refuse=True,  # RFC 5429 §2.1.1: a reject every recipient's script makes is answered here
        )
        if outcome.refusal is not None:
            return outcome.refusal
        if not outcome.ok:
            return "451 4.3.0 Temporary local problem, please try again"
        log.info("accepted %s for %d recipient(s) as %s", message_id or "message", len(targets), queue_id)
        return f"250 2.0.0 Ok: queued as {queue_id}"

    async def _reports(
        self, raw: Pieces, header: str, peer_ip: str, message_id: str | None, targets: list[Target]
    ) -> str | None:
        """The answer to a message for the report address, or None when it goes on to an alias."""
        taken = await self.reports.take(raw, header, peer_ip, message_id)
        if taken is not None:
            return taken
        if all(t.drop for t in targets):  # no report, and no alias of that name to read it
            return "550 5.1.1 No such user here: this address takes DMARC and TLS reports only"
        return None

    async def _scan(
        self,
        raw: Pieces,
        session: Session,
        mail_from: str,
        targets: list[Target],
        queue_id: str,
        peer_ip: str,
        smtputf8: bool = False,
    ) -> MessageSpam:
        """rspamd's decision on the message for the recipients' domains (none: scanning is off)."""
        if self.spam is None:
            return OFF
        lookup: asyncio.Task[str | None] | None = getattr(session, "sealmail_rdns", None)
        hostname = None
        if lookup is not None:
            # Begun at MAIL; a DNS slower than that costs DATA at most FCRDNS_WAIT, then rspamd asks itself.
            with contextlib.suppress(TimeoutError):
                hostname = await asyncio.wait_for(asyncio.shield(lookup), FCRDNS_WAIT)
        request = ScanRequest(
            ip=peer_ip,
            helo=session.host_name or "",
            hostname=hostname,
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt=[t.address for t in targets],
            queue_id=queue_id,
            smtputf8=smtputf8,
        )
        domains = {t.alias.domain: t.thresholds for t in targets if not t.drop}
        return await self.spam.scan(raw, request, domains)

    def _trace_headers(self, session: Session, envelope: Envelope, queue_id: str, targets: list[Target]) -> bytes:
        """RFC 5321 §4.4 Received: with the RFC 3848/6531 protocol type."""
        tls = session.ssl is not None
        utf8 = getattr(envelope, "smtp_utf8", False)
        protocol = ("UTF8SMTP" if utf8 else "ESMTP") + ("S" if tls else "")
        peer_ip = str(session.peer[0]) if session.peer else "unknown"
        if ":" in peer_ip:
            peer_ip = "IPv6:" + peer_ip  # §4.1.3: an IPv6 address literal is tagged
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        rcpt = f"\r\n\tfor <{targets[0].address}>" if len(targets) == 1 else ""
        stamp = format_datetime(datetime.now(UTC))
        line = (
            f"Received: from {helo} ([{peer_ip}])\r\n\tby {self.settings.mail_hostname} (Sealmail) "
            f"with {protocol} id {queue_id}{rcpt};\r\n\t{stamp}\r\n"
        )
        return line.encode("utf-8")


def _thresholds(domain: Domain | None) -> Thresholds | None:
    """A domain's own spam thresholds (None: rspamd's actions decide)."""
    if domain is None:
        return None
    found = Thresholds(domain.spam_reject, domain.spam_defer, domain.spam_junk)
    return None if found.empty else found


def _without_spam_fields(body: list[Any]) -> list[Any]:
    """The message without a sender's own X-Spam-* fields (ours go before it); pieces, no copy of the body."""
    cut = spam_fields_cut(first_bytes(body, 65536))
    return body if cut is None else [cut[0], *after(body, cut[1])]


def _declared_size(mail_options: list[str]) -> int:
    for option in mail_options:
        if option.upper().startswith("SIZE="):
            value = option[5:]
            return int(value) if value.isdigit() else 0
    return 0


def _log_entry(status: str, targets: list[Target], message_id: str | None, peer: str, detail: str) -> Any:
    from sealmail.config.models import LogEntry

    first = targets[0] if targets else None
    return LogEntry(
        kind="delivery",
        component="mx",
        status=status,
        domain=first.alias.domain if first else None,
        address=first.address if first else None,
        message_id=message_id,
        peer=peer,
        detail=detail,
    )


class MxSessions:
    """What serves MX sessions in one process: the app context, checks, handler and protocol factory."""

    def __init__(self, settings: Settings, checks: SenderChecks | None = None) -> None:
        self.settings = settings
        self._checks = checks
        self.app: AppContext | None = None
        self._owned_checks: Any = None
        self._spam: SpamScanner | None = None
        self._stats: SpamStats | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._handover: asyncio.Task[None] | None = None
        self._inbound: InboundDelivery | None = None

    async def start(self, book: ConnectionBook) -> Callable[[], SealmailSMTP]:
        """Open what sessions share; returns the protocol factory for connections counted in ``book``."""
        settings = self.settings
        self.app = AppContext(settings)
        queue = open_queue(settings, self.app.mailstore)  # the data host's, through the store, with store_url
        checks = self._checks or await _default_checks(settings)
        self._owned_checks = None if self._checks else checks
        outbox = None
        if settings.store_url is not None:  # mailboxes on a data host: hold sealed mail while it is away
            outbox = Outbox(settings.data_dir / "outbox")
            handover = HandOver(outbox, self.app.mailstore)
            self._handover = asyncio.create_task(handover.run(self._stop), name="sealmail-outbox-handover")
        self._inbound = InboundDelivery(self.app, queue, ForwardRewriter(settings, self.app.config), outbox)
        if settings.rspamd_url is not None:
            from sealmail.spam.scanner import RspamdScanner

            self._spam = RspamdScanner(settings)
            self._stats = SpamStats(self.app)
            self._stats_task = asyncio.create_task(self._stats.run(self._stop), name="sealmail-spam-stats")
        handler = MxHandler(self.app, self._inbound, checks, self._spam, self._stats)
        tls = ServerTLS.from_settings(settings) if settings.tls_cert_file else None

        def protocol() -> SealmailSMTP:
            return MxSMTP.for_settings(
                handler,
                settings,
                book,
                "ESMTP Sealmail",
                tls_context=tls.context() if tls else None,
                require_starttls=False,  # RFC 3207 §4: a public MX must not require TLS
            )

        return protocol

    async def stop(self) -> None:
        self._stop.set()
        if self._handover is not None:
            await self._handover
        if self._owned_checks is not None:
            await self._owned_checks.close()
        if self._spam is not None:
            await self._spam.close()
        if self._stats_task is not None:
            await self._stats_task  # the last counts, after the last session
        if self._inbound is not None:
            await self._inbound.close()  # bookkeeping of messages answered already
        if self.app is not None:
            await self.app.close()


class MxComponent:
    """``sealmail serve mx``: aiosmtpd's protocol inside our event loop, with our limits and checks.

    With ``mx_processes`` above 1 the sessions run in that many processes behind one listening
    socket (``sealmail.smtp.mxprocs``); this process then only accepts and counts connections.
    """

    def __init__(self, settings: Settings, checks: SenderChecks | None = None) -> None:
        self.settings = settings
        self._servers: list[asyncio.Server] = []
        self._book: ConnectionBook | None = None
        self._sessions = MxSessions(settings, checks)
        self._processes: Any = None
        self._stopped = False

    async def start(self) -> dict[str, int]:
        settings = self.settings
        book = self._book = ConnectionBook(settings.mx_max_connections, settings.mx_max_connections_per_ip)
        book.draining = DrainFlag(settings.run_dir)
        if settings.mx_processes > 1:
            self._processes = MxProcesses(settings, book)
            return {"mx": await self._processes.start()}
        protocol = await self._sessions.start(book)
        loop = asyncio.get_running_loop()
        sockets = listen_sockets(settings, settings.mx_port)
        self._servers = await serve_each(lambda sock: loop.create_server(protocol, sock=sock, backlog=BACKLOG), sockets)
        return {"mx": bound_port(sockets)}

    @property
    def sessions(self) -> int:
        """Connections open now (``sealmail status``: how far a drain has come)."""
        return self._book.total if self._book is not None else 0

    async def stop(self) -> None:
        if self._stopped:  # once: a caller that stops it early (to flush what it counted) and its owner
            return
        self._stopped = True
        if self._processes is not None:
            await self._processes.stop()
        if self._servers:
            for server in self._servers:
                server.close()
            if self._book is not None:
                await self._book.close_all()
            for server in self._servers:
                await server.wait_closed()
        await self._sessions.stop()


class MailAuthChecks:
    """SPF, DKIM, ARC and DMARC through the configured resolver; DMARC policy decides reject or Junk.

    The checks run in worker processes (``mx_auth_workers``; by default the CPU cores shared out
    among the MX session processes), so their CPU work neither holds this process's GIL nor stalls
    its event loop (``mailauth.workers``).
    """

    def __init__(self, settings: Settings) -> None:
        from sealmail.mailauth.workers import AuthWorkers
        from sealmail.net.dns import parse_server

        self.settings = settings
        workers = settings.mx_auth_workers
        if workers is None:  # the cores, shared out among the MX session processes
            workers = max(1, (os.cpu_count() or 1) // settings.mx_processes)
        self.workers = AuthWorkers([parse_server(s) for s in settings.dns_servers], settings.dns_timeout, workers)

    async def start(self) -> None:
        await self.workers.start()

    async def close(self) -> None:
        await self.workers.close()

    async def check(self, *, peer_ip: str, helo: str, mail_from: str, message: Pieces) -> Verdict:
        results, stripped = await self.workers.check(peer_ip, helo, mail_from, message, self.settings.auth_id)
        dmarc = results.dmarc
        reject, junk = None, False
        if dmarc.result == "fail" and dmarc.disposition == "reject":
            if self.settings.dmarc_failure_action == "reject":
                reject = f"550 5.7.1 Rejected by the DMARC policy of {dmarc.from_domain}"
            else:
                junk = True
        elif dmarc.result == "fail" and dmarc.disposition == "quarantine":
            junk = True
        return Verdict(results.header(self.settings.auth_id), reject, junk, stripped)


async def _default_checks(settings: Settings) -> SenderChecks:
    checks = MailAuthChecks(settings)
    await checks.start()
    return checks
