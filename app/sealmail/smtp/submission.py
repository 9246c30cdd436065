"""Authenticated submission: ``sealmail serve smtp`` on 465 (implicit TLS, RFC 8314) and 587 (STARTTLS).

AUTH PLAIN and LOGIN (RFC 4954) with the alias address and its password: the Argon2id check runs
off the event loop and failures are throttled per IP and per account (``454 4.7.0`` while locked).
The envelope sender and every ``From:`` address must be the signed-in alias itself, or one of its
plus-addresses that is not an alias of its own (``Identity.may_send_as``); anything else is
``553 5.7.1``. DSN parameters (RFC 3461) ride on the queue entries. Messages get
CRLF line endings (``smtp.lineends``), are DKIM-signed and queued, one job per recipient, fsynced
before the ``250``.

Outbound filtering (issue 21): with ``rspamd_url`` set, each message is scanned by rspamd as the
signed-in user's before the ``250`` (``spam.outbound`` says what its action means here), and each
alias may send so many messages and recipients an hour (``services.sendlimits``: ``451 4.7.1`` at
MAIL FROM or RCPT TO past a limit). The process log names the alias by its id and the message by
its queue id, never by an address.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any, cast

from aiosmtpd.smtp import AuthResult

from sealmail.addresses import parse_mailbox
from sealmail.appcontext import AppContext
from sealmail.config.base import ConfigStore
from sealmail.config.models import Alias, LogEntry
from sealmail.errors import InvalidInput, NotFound
from sealmail.mime.headers import top_values
from sealmail.net.drain import DrainFlag
from sealmail.net.limits import Refused
from sealmail.net.listen import BACKLOG, bound_port, close_all, listen_ports, serve_each
from sealmail.net.tls import ServerTLS
from sealmail.queue.service import JobQueueAPI, open_queue
from sealmail.queue.store import NewJob
from sealmail.services import credentials, revocation
from sealmail.services.dkim import fetch_keys, has_all_keys
from sealmail.services.sendlimits import (
    HourlyLimits,
    SendCounter,
    Usage,
    messages_refusal,
    recipients_refusal,
)
from sealmail.services.sessions import guard
from sealmail.smtp import dkimsign
from sealmail.smtp.lineends import to_wire
from sealmail.smtp.protocol import ConnectionBook, SealmailSMTP
from sealmail.spam.outbound import FLAGGED
from sealmail.spam.policy import SpamDecision
from sealmail.spam.rspamd import ScanRequest

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from sealmail.settings import Settings
    from sealmail.spam.scanner import RspamdScanner

log = logging.getLogger("sealmail.smtp")
_MAIL_DSN = re.compile(r"\s+(RET|ENVID)=(\S+)", re.IGNORECASE)
_RCPT_DSN = re.compile(r"\s+(NOTIFY|ORCPT)=(\S+)", re.IGNORECASE)
_NOTIFY = {"NEVER", "SUCCESS", "FAILURE", "DELAY"}
_REVOKED = "421 4.7.0 Signed out: this account's password or access changed"
_LOCAL_PROBLEM = "451 4.3.0 Temporary local problem, please try again"
# RFC 3463 §3.8 X.7.1: not authorized; permanent, as the block stays until an administrator lifts it.
_BLOCKED = "550 5.7.1 This account may not send mail; contact your administrator"


@dataclass
class Identity:
    """The signed-in alias."""

    alias: Alias
    address: str  # normalised local@ascii-domain
    revoked: bool = False  # the account's password or access changed since (services.revocation)

    def may_send_as(self, config: ConfigStore, address: str) -> bool:
        """Whether the signed-in alias may use ``address`` as MAIL FROM or in From: (RFC 6409 §6.1).

        Its own address, always (``a+x`` is itself, though its name holds a ``+``); ``local+tag``
        only when ``local`` is the signed-in alias and ``local+tag`` is not an alias of its own —
        that is, exactly the plus-addresses that deliver to the signed-in alias. Blocking (config
        store): call it off the event loop.
        """
        try:
            mailbox = parse_mailbox(address)
        except InvalidInput:
            return False
        if mailbox.domain.ascii != self.alias.domain:
            return False
        if mailbox.local == self.alias.name:
            return True
        if mailbox.base_local != self.alias.name:
            return False
        return config.find_alias(self.alias.domain, "exact", mailbox.local) is None

    def may_send_as_all(self, config: ConfigStore, addresses: list[str]) -> bool:
        return bool(addresses) and all(self.may_send_as(config, a) for a in addresses)


@dataclass
class DsnRequest:
    """RFC 3461 parameters of one submission."""

    ret: str | None = None  # FULL or HDRS
    envid: str | None = None
    recipients: dict[str, dict[str, str]] = field(default_factory=dict)  # rcpt -> {notify, orcpt}


class SubmissionSMTP(SealmailSMTP):
    """Takes the DSN parameters off MAIL and RCPT before aiosmtpd's own parsing, which knows none;
    ends the connection when its signed-in account's credentials change (``end_revoked``)."""

    revocation_watch: revocation.Watch | None = None

    def end_revoked(self) -> None:
        """RFC 5321 §3.8: the server closes with 421 (4.7.0: a security reason, RFC 3463 §3.8)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"421 4.7.0 Signed out: this account's password or access changed\r\n")  # type: ignore[attr-defined]
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.revocation_watch is not None:
            self.revocation_watch.cancel()
            self.revocation_watch = None
        super().connection_lost(exc)

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        dsn = DsnRequest()
        if arg:
            for name, value in _MAIL_DSN.findall(arg):
                if name.upper() == "RET":
                    if value.upper() not in ("FULL", "HDRS"):
                        await self.push("501 5.5.4 RET must be FULL or HDRS")
                        return
                    dsn.ret = value.upper()
                else:
                    dsn.envid = value
            arg = _MAIL_DSN.sub("", arg)
        self._dsn = dsn
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:  # noqa: N802
        params: dict[str, str] = {}
        if arg:
            for name, value in _RCPT_DSN.findall(arg):
                if name.upper() == "NOTIFY":
                    words = {w.upper() for w in value.split(",")}
                    if not words <= _NOTIFY or ("NEVER" in words and len(words) > 1):
                        await self.push("501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
                        return
                    params["notify"] = ",".join(sorted(words))
                else:
                    params["orcpt"] = value
            arg = _RCPT_DSN.sub("", arg)
        self._rcpt_dsn = params
        await super().smtp_RCPT(arg)


class SubmissionHandler:
    def __init__(self, app: AppContext, queue: JobQueueAPI, spam: RspamdScanner | None = None) -> None:
        self.app = app
        self.settings = app.settings
        self.queue = queue
        self.spam = spam  # None: no scanning (rspamd_url unset)
        self.limits = HourlyLimits.from_settings(app.settings)
        self.sent = SendCounter(app.redis, self.limits)  # the shared Redis, or this process's memory

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-DSN", responses[-1]]

    # ---- authentication (RFC 4954) --------------------------------------------------------------
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        import base64

        if len(args) == 1:
            response = await server.challenge_auth("")
            if not isinstance(response, bytes):
                return AuthResult(success=False, handled=False)
        else:
            try:
                response = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode base64")
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Bad PLAIN response")
        authzid, login, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid != login:
            return AuthResult(success=False, handled=False, message="535 5.7.8 Cannot act for another user")
        return await self._authenticate(server, login, password)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        import base64

        if len(args) == 2:
            try:
                login_raw: Any = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode base64")
        else:
            login_raw = await server.challenge_auth("Username:")
        if not isinstance(login_raw, bytes):
            return AuthResult(success=False, handled=False)
        password_raw = await server.challenge_auth("Password:")
        if not isinstance(password_raw, bytes):
            return AuthResult(success=False, handled=False)
        return await self._authenticate(
            server, login_raw.decode("utf-8", "replace"), password_raw.decode("utf-8", "replace")
        )

    async def _authenticate(self, server: SMTP, login: str, password: str) -> AuthResult:
        ip = str(server.session.peer[0]) if server.session and server.session.peer else "?"
        attempt = await self.app.limiter.reserve(ip, login)
        if isinstance(attempt, Refused):
            return AuthResult(
                success=False, handled=False, message=f"454 4.7.0 {attempt.reason.capitalize()}, try again later"
            )
        try:
            alias, credential = await self.app.logins.check(self.app.config, login, password)
        except credentials.AuthenticationFailed:
            await attempt.failed()
            log.info("failed login", extra={"peer": ip})
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")
        await attempt.succeeded()
        identity = Identity(alias, f"{alias.name}@{alias.domain}")

        def revoked(event: revocation.Revoked) -> None:
            identity.revoked = True
            if isinstance(server, SubmissionSMTP):
                server.end_revoked()

        watch = await guard(self.app.revocations, self.app.config, credential, revoked, needs_mailbox=False)
        if watch is None:  # the credentials changed while this login was checked
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")
        if isinstance(server, SubmissionSMTP):
            server.revocation_watch = watch
        else:
            watch.cancel()
        return AuthResult(success=True, auth_data=identity)

    # ---- the envelope ---------------------------------------------------------------------------
    async def handle_MAIL(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        identity: Identity | None = session.auth_data if session.authenticated else None
        if identity is None:
            return "530 5.7.0 Authentication required"
        if identity.revoked:
            return _REVOKED
        refusal: str | None = await self.app.config_call(_sender_refusal, self.app.config, identity, address)
        if refusal is not None:
            if refusal == _BLOCKED:
                log.info("sending blocked: alias %s", identity.alias.id)
            return refusal
        if self.limits.enabled:
            # Read once per transaction: RCPT TO compares against it, DATA checks again atomically.
            try:
                usage = await self.sent.usage(identity.alias.id)
            except Exception as exc:  # Redis away: nothing is sent uncounted
                log.error("could not read the sending limits: %s", exc)
                return _LOCAL_PROBLEM
            if not usage.may_send(self.limits):
                log.info("sending limit: alias %s has sent %d messages this hour", identity.alias.id, usage.messages)
                return messages_refusal(usage, self.limits)
            envelope.sealmail_usage = usage  # type: ignore[attr-defined]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.sealmail_dsn = getattr(server, "_dsn", DsnRequest())  # type: ignore[attr-defined]
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if len(envelope.rcpt_tos) >= self.settings.mx_max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            parse_mailbox(address, fold_case=False)
        except InvalidInput:
            return "553 5.1.3 Bad recipient address syntax"
        usage: Usage | None = getattr(envelope, "sealmail_usage", None)
        wanted = len(envelope.rcpt_tos) + 1
        if usage is not None and not usage.may_add(self.limits, wanted):
            # This recipient only: those accepted so far are sent, the client sends the rest later.
            identity = cast("Identity", session.auth_data)
            log.info("sending limit: alias %s has sent to %d recipients this hour", identity.alias.id, usage.recipients)
            return recipients_refusal(usage, self.limits, wanted)
        dsn: DsnRequest = getattr(envelope, "sealmail_dsn", DsnRequest())
        dsn.recipients[address] = dict(getattr(server, "_rcpt_dsn", {}))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        identity = cast("Identity", session.auth_data)
        if identity.revoked:  # nothing is queued for a session whose credentials changed meanwhile
            return _REVOKED
        # Signed as it will be sent: bare CR and bare LF become CRLF first (why: smtp.lineends).
        # The message arrives as the chunks it was read in (``smtp.protocol``).
        raw = to_wire(b"".join(cast("list[bytes]", envelope.original_content or [])))  # our DATA reader keeps chunks
        from_values = [v.decode("utf-8", "replace") for v in top_values(raw, "from")]
        senders = [addr for value in from_values for _, addr in getaddresses([value])]
        if not await self.app.config_call(identity.may_send_as_all, self.app.config, senders):
            return "553 5.7.1 From: must be the signed-in user's address"
        message = _complete_headers(raw, identity, self.settings.mail_hostname)
        queue_id = secrets.token_hex(6)
        message_id = [v.decode("utf-8", "replace") for v in top_values(raw, "message-id")]
        spam = await self._scan(message, session, envelope, identity, queue_id)
        if spam.reply is not None:
            log.info("refused %s from alias %s: rspamd %s", queue_id, identity.alias.id, spam.status)
            await self.app.log_event(_refusal_entry(identity, message_id, spam, queue_id))
            return spam.reply
        refusal = await self._count(identity, queue_id, len(envelope.rcpt_tos))
        if refusal is not None:
            return refusal
        try:
            reply = await self._queue(message, envelope, identity, queue_id, message_id, spam)
        except BaseException:
            await self._forget(identity, queue_id, len(envelope.rcpt_tos))
            raise
        if not reply.startswith("250"):
            await self._forget(identity, queue_id, len(envelope.rcpt_tos))
        return reply

    async def _count(self, identity: Identity, queue_id: str, recipients: int) -> str | None:
        """Count the message against the alias's hourly limits; a refusal when it would pass one.

        The entry goes in before the 250 and comes out again if the message is not queued (``_forget``):
        counted once it is accepted, atomically with the check, as other hosts send for it too."""
        if not self.limits.enabled:
            return None
        try:
            over = await self.sent.record(identity.alias.id, queue_id, recipients)
        except Exception as exc:  # Redis away: nothing is sent uncounted
            log.error("could not count %s against the sending limits: %s", queue_id, exc)
            return _LOCAL_PROBLEM
        if over is None:
            return None
        log.info("sending limit: alias %s refused at DATA as %s", identity.alias.id, queue_id)
        if not over.may_send(self.limits):
            return messages_refusal(over, self.limits)
        return recipients_refusal(over, self.limits, recipients)

    async def _forget(self, identity: Identity, queue_id: str, recipients: int) -> None:
        """Take back the count of a message that was not queued after all (it costs the alias nothing)."""
        if not self.limits.enabled:
            return
        try:
            await self.sent.forget(identity.alias.id, queue_id, recipients)
        except Exception as exc:  # the entry leaves the window within the hour anyway
            log.warning("could not take %s back from the sending limits: %s", queue_id, exc)

    async def _scan(
        self, message: bytes, session: Session, envelope: Envelope, identity: Identity, queue_id: str
    ) -> SpamDecision:
        """rspamd's verdict on a message the signed-in user sends (none: scanning is off)."""
        if self.spam is None:
            return SpamDecision(status="off")
        peer = session.peer
        request = ScanRequest(
            ip=str(peer[0]) if peer else "127.0.0.1",
            helo=session.host_name or "",
            mail_from=envelope.mail_from or "",
            rcpt=list(envelope.rcpt_tos),
            queue_id=queue_id,
            user=identity.address,  # rspamd treats authenticated mail as outbound (no SPF on it, ...)
        )
        return await self.spam.scan_outbound([message], request)

    async def _queue(
        self,
        message: bytes,
        envelope: Envelope,
        identity: Identity,
        queue_id: str,
        message_id: list[str],
        spam: SpamDecision,
    ) -> str:
        """Sign and queue the message, one job per recipient; the reply to DATA."""
        domain = identity.alias.domain
        if not has_all_keys(self.settings, domain):  # checked here: no thread hop per message when all are there
            # A domain another host added (web admin, API): its keys are in the shared config store.
            await self.app.config_call(fetch_keys, self.settings, self.app.config, domain)
        signed = await asyncio.to_thread(dkimsign.sign, self.settings, domain, message)
        dsn: DsnRequest = getattr(envelope, "sealmail_dsn", DsnRequest())
        utf8 = bool(getattr(envelope, "smtp_utf8", False))
        jobs = [
            NewJob(
                "smtp",
                {
                    "origin": "submission",
                    "queue_id": queue_id,
                    "mail_from": envelope.mail_from,
                    "rcpt_to": rcpt,
                    "alias": identity.address,
                    "smtputf8": utf8,
                    "dsn": {"ret": dsn.ret, "envid": dsn.envid, **dsn.recipients.get(rcpt, {})},
                },
                signed,
            )
            for rcpt in envelope.rcpt_tos
        ]
        try:
            await asyncio.to_thread(self.queue.add_many, jobs)
        except Exception as exc:
            log.error("could not queue a submission: %s", exc)
            return _LOCAL_PROBLEM
        flagged = ""
        if spam.status == FLAGGED:
            # Sent all the same (spam.outbound); the operator sees the account drift in both logs.
            log.warning("alias %s sent %s flagged by rspamd (score %.2f)", identity.alias.id, queue_id, spam.score or 0)
            flagged = f"; flagged by rspamd, score {spam.score or 0:.2f}"
        for rcpt in envelope.rcpt_tos:
            await self.app.log_event(
                LogEntry(
                    kind="delivery",
                    component="smtp",
                    status="queued",
                    domain=domain,
                    address=identity.address,
                    message_id=message_id[0].strip() if message_id else None,
                    detail=f"to {rcpt} as {queue_id}{flagged}",
                ),
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _refusal_entry(identity: Identity, message_id: list[str], spam: SpamDecision, queue_id: str) -> LogEntry:
    """The delivery log's line for a submitted message rspamd refused (the admin sees who sends spam)."""
    score = f", score {spam.score:.2f}" if spam.score is not None else ""
    return LogEntry(
        kind="delivery",
        component="smtp",
        status="rejected" if spam.status == "reject" else "deferred",
        domain=identity.alias.domain,
        address=identity.address,
        message_id=message_id[0].strip() if message_id else None,
        detail=f"outbound spam check: {spam.status}{score} as {queue_id}",
    )


def _sender_refusal(config: ConfigStore, identity: Identity, address: str) -> str | None:
    """Why MAIL FROM ``address`` is refused, if it is. Blocking (config store): run off the event loop.

    The alias is read as it is now, not as it was at AUTH: a block an administrator sets applies to
    the sessions open already, from their next message on."""
    try:
        current = config.get_alias(identity.alias.id)
    except NotFound:
        return _REVOKED  # removed meanwhile (its sessions are being ended too)
    if current.sending_blocked:
        return _BLOCKED
    if address in ("", "<>") or not identity.may_send_as(config, address):
        return "553 5.7.1 Sender address not owned by the signed-in user"
    return None


def _complete_headers(raw: bytes, identity: Identity, hostname: str) -> bytes:
    """Add Date: and Message-ID: when the client left them out (RFC 6409 §8.2, §8.3)."""
    extra = b""
    if not top_values(raw, "date"):
        extra += f"Date: {format_datetime(datetime.now(UTC))}\r\n".encode()
    if not top_values(raw, "message-id"):
        extra += f"Message-ID: {make_msgid(domain=identity.address.rsplit('@', 1)[1])}\r\n".encode()
    return extra + raw


class SubmissionComponent:
    """Listeners on 465 (implicit TLS) and 587 (STARTTLS required before AUTH)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: AppContext | None = None
        self._spam: RspamdScanner | None = None
        self._servers: list[asyncio.Server] = []
        self._book: ConnectionBook | None = None

    async def start(self) -> dict[str, int]:
        settings = self.settings
        self.app = AppContext(settings)
        queue = open_queue(settings, self.app.mailstore)  # the data host's, through the store, with store_url
        if settings.rspamd_url is not None:
            from sealmail.spam.scanner import RspamdScanner

            self._spam = RspamdScanner(settings)
        handler = SubmissionHandler(self.app, queue, self._spam)
        tls = ServerTLS.from_settings(settings)
        book = self._book = ConnectionBook(settings.mx_max_connections, settings.mx_max_connections_per_ip)
        book.draining = DrainFlag(settings.run_dir)

        def factory(implicit: bool) -> Callable[[], SubmissionSMTP]:
            def protocol() -> SubmissionSMTP:
                with warnings.catch_warnings():
                    # aiosmtpd warns when AUTH is allowed without its own TLS check; on 465 TLS is implicit.
                    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
                    return self._protocol(handler, book, tls, implicit)

            return protocol

        loop = asyncio.get_running_loop()
        ports = {"submission_tls": settings.submission_tls_port, "submission": settings.submission_port}
        bound = listen_ports(settings, ports)
        try:
            implicit = bound.pop("submission_tls")
            context = tls.context()
            self._servers += await serve_each(
                lambda s: loop.create_server(factory(True), sock=s, ssl=context, backlog=BACKLOG), implicit
            )
            starttls = bound.pop("submission")
            self._servers += await serve_each(
                lambda s: loop.create_server(factory(False), sock=s, backlog=BACKLOG), starttls
            )
        finally:
            close_all(s for group in bound.values() for s in group)  # those not handed over
        return {"submission_tls": bound_port(implicit), "submission": bound_port(starttls)}

    def _protocol(
        self, handler: SubmissionHandler, book: ConnectionBook, tls: ServerTLS, implicit: bool
    ) -> SubmissionSMTP:
        return SubmissionSMTP.for_settings(
            handler,
            self.settings,
            book,
            "ESMTP Sealmail submission",
            tls_context=None if implicit else tls.context(),
            require_starttls=not implicit,  # RFC 3207 §4 / RFC 8314: nothing in clear on 587
            auth_require_tls=not implicit,  # on 465 TLS is there from the start, aiosmtpd cannot tell
            auth_required=True,
        )

    @property
    def sessions(self) -> int:
        """Connections open now (``sealmail status``: how far a drain has come)."""
        return self._book.total if self._book is not None else 0

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        if self._book is not None:
            await self._book.close_all()
        for server in self._servers:
            await server.wait_closed()
        if self._spam is not None:
            await self._spam.close()
        if self.app is not None:
            await self.app.close()
