"""The outbound delivery worker (in ``sealmail serve jobs``): queued copies to their destinations.

Per recipient domain: MX lookup (RFC 5321 §5.1; a null MX refuses mail, RFC 7505), falling back to
the domain's own A/AAAA; port 25 (a setting, so tests can use another); opportunistic STARTTLS;
MTA-STS (RFC 8461) — under ``enforce`` only MX hosts the policy names, and only with a valid
certificate. Local domains skip the network and go through the MX's own delivery. Connections go
only to the address families ``SEALMAIL_OUTBOUND_IP_FAMILY`` allows, from the chosen source address
of that family when one is set (``net.outbound``).

Temporary failures (4xx, timeouts, refused connections) are retried with exponential backoff up to
``smtp_max_age`` and survive restarts (the queue is durable); permanent failures and expiry send a
DSN to the sender. Every attempt is in the delivery log. A message that needs SMTPUTF8 is never
sent to a server without it: it bounces with 5.6.7 (RFC 6531 §3.5) instead of being mangled.
When every attempt times out, the log says in plain words that outbound port 25 is probably
blocked by the hosting provider.

A session that delivered stays open for a few seconds and carries the next message for the same
host (RFC 5321 §3.3 allows many transactions per session; RSET first): no new TCP and TLS
handshake per message when a queue drains to one destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from sealmail.addresses import parse_mailbox
from sealmail.config.models import LogEntry
from sealmail.errors import InvalidInput
from sealmail.mailauth.mtasts import StsPolicy
from sealmail.net import outbound
from sealmail.queue.service import JobQueueAPI
from sealmail.queue.store import Job, NewJob
from sealmail.services.resolve import resolve
from sealmail.smtp.deliveryjob import (
    AttemptKind,
    AttemptResult,
    Bounce,
    DeliveryJob,
    Done,
    Retry,
    RetrySchedule,
    decide,
)
from sealmail.smtp.dsn import RecipientStatus, build_dsn
from sealmail.smtp.inbound import InboundDelivery, Target
from sealmail.smtp.lineends import to_wire
from sealmail.smtp.mtasts import MtaStsCache
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext

log = logging.getLogger("sealmail.delivery")
PORT_25_HINT = (
    "every connection to port 25 timed out: your hosting provider probably blocks outbound port 25; "
    "ask them to open it (many do on request) or use a provider that allows mail servers"
)  # sealmail status recognises "port 25" in these log lines


class MxResolver(Protocol):
    async def mx_hosts(self, domain: str) -> list[str] | None:
        """Exchange host names by preference; [] for a null MX; None when the domain has no MX."""

    async def host_addresses(self, host: str) -> list[str]:
        """IPv4 and IPv6 addresses of a host (empty when it has none)."""

    async def txt_records(self, name: str) -> list[str]:
        """TXT strings at a name, each record's strings joined (empty when none)."""


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    tls: bool
    idle_since: float
    transactions: int


class SessionCache:
    """Open SMTP sessions that delivered, by (MX host, address, MTA-STS enforced), for reuse.

    A session waits at most ``idle`` seconds and carries at most ``max_transactions`` messages,
    so a remote server's own idle timeout is seldom met, and no session lives for ever.
    """

    def __init__(self, idle: float = 5.0, max_transactions: int = 100) -> None:
        self.idle = idle
        self.max_transactions = max_transactions
        self._sessions: defaultdict[tuple[str, str, bool], list[_Session]] = defaultdict(list)

    def take(self, key: tuple[str, str, bool]) -> _Session | None:
        self.expire()
        sessions = self._sessions.get(key)
        return sessions.pop() if sessions else None

    def give(self, key: tuple[str, str, bool], session: _Session) -> bool:
        """Keep a session for reuse; False when it has carried enough (the caller closes it)."""
        if session.transactions >= self.max_transactions or not session.client.is_connected:
            return False
        session.idle_since = time.monotonic()
        self._sessions[key].append(session)
        return True

    def expire(self) -> None:
        """Close the sessions idle for too long (called often: at every take, and by the worker loop)."""
        limit = time.monotonic() - self.idle
        for key in list(self._sessions):
            keep = []
            for session in self._sessions[key]:
                if session.idle_since >= limit and session.client.is_connected:
                    keep.append(session)
                else:
                    _close_soon(session.client)
            if keep:
                self._sessions[key] = keep
            else:
                del self._sessions[key]

    async def close(self) -> None:
        sessions = [s for group in self._sessions.values() for s in group]
        self._sessions.clear()
        await asyncio.gather(*(_quit(s.client) for s in sessions))


async def _quit(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.quit(), 5)
    client.close()


_closing: set[asyncio.Task[None]] = set()


def _close_soon(client: aiosmtplib.SMTP) -> None:
    task = asyncio.get_running_loop().create_task(_quit(client))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _enhanced(reply: str, default: str) -> str:
    parts = reply.split()
    if len(parts) > 1 and parts[1].count(".") == 2 and parts[1][0] in "245":
        return parts[1]
    return default


class DeliveryWorker:
    def __init__(
        self,
        app: AppContext,
        queue: JobQueueAPI,
        resolver: MxResolver,
        inbound: InboundDelivery,
        *,
        concurrency: int = 16,
        per_domain: int = 4,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.queue = queue
        self.resolver = resolver
        self.inbound = inbound
        self.concurrency = concurrency
        self._per_domain: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_domain))
        self.sts = MtaStsCache(app, resolver)
        self.sessions = SessionCache()
        self._opportunistic = _opportunistic_context()
        self._tls = ssl.create_default_context(
            cafile=str(self.settings.smtp_ca_file) if self.settings.smtp_ca_file else None
        )

    async def close(self) -> None:
        await self.sessions.close()
        await self.sts.close()
        await self.inbound.close()  # local deliveries' bookkeeping, and the Sieve threads

    async def run(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            room = self.concurrency - len(running)
            try:
                jobs = await asyncio.to_thread(self.queue.claim, "smtp", room, 600.0) if room > 0 else []
            except StoreUnavailable:  # the queue is on a data host that is away: wait, then ask again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            for job in jobs:
                task = asyncio.create_task(self.attempt(job))
                running.add(task)
                task.add_done_callback(running.discard)
            if jobs:
                continue
            self.sessions.expire()
            if room <= 0:  # every slot busy: go on when one frees up
                await asyncio.wait(running, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                due = await asyncio.to_thread(self.queue.next_due, "smtp")
            except StoreUnavailable:
                due = None
            wait = 1.0 if due is None else min(1.0, max(0.05, due - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        if running:
            await asyncio.wait(running, timeout=30)

    # ---- one attempt ----------------------------------------------------------------------------
    async def attempt(self, row: Job) -> None:
        job = DeliveryJob.from_job(row)  # parsed once; the queue row's meta is not read again
        rcpt = job.rcpt_to
        try:
            domain = parse_mailbox(rcpt, fold_case=False).domain.ascii
        except InvalidInput:
            await self._finish(job, AttemptResult("permanent", f"invalid recipient address {rcpt!r}", status="5.1.3"))
            return
        hosted = await self.app.config_call(self.app.config.find_domain, domain)
        if hosted is not None:
            result = await self._deliver_locally(job, rcpt)
        else:
            async with self._per_domain[domain]:
                result = await self._deliver_remote(job, domain)
        await self._finish(job, result)

    async def _deliver_locally(self, job: DeliveryJob, rcpt: str) -> AttemptResult:
        """A hosted domain: the MX's own logic, no network hop."""
        try:
            resolution = await self.app.config_call(resolve, self.app.config, rcpt)
        except InvalidInput:
            return AttemptResult("permanent", "553 5.1.3 Bad recipient address syntax", status="5.1.3")
        alias = resolution.alias
        if alias is None:
            return AttemptResult("permanent", "550 5.1.1 No such user here", mx="local", status="5.1.1")
        if not alias.enabled and alias.disabled_reply != "drop":
            if alias.disabled_reply == "defer":
                return AttemptResult("temporary", "450 4.2.1 Mailbox disabled", mx="local", status="4.2.1")
            return AttemptResult("permanent", "550 5.2.1 Mailbox disabled", mx="local", status="5.2.1")
        target = Target(rcpt, alias, drop=not alias.enabled)
        outcome = await self.inbound.deliver(
            job.payload,
            mail_from=job.mail_from,
            targets=[target],
            original=job.payload + job.id.encode(),
        )
        if outcome.ok:
            return AttemptResult("delivered", "250 2.0.0 delivered locally", mx="local", status="2.0.0")
        return AttemptResult("temporary", "451 4.3.0 local delivery failed", mx="local", status="4.3.0")

    async def _deliver_remote(self, job: DeliveryJob, domain: str) -> AttemptResult:
        try:
            hosts = await self.resolver.mx_hosts(domain)
        except Exception as exc:  # a DNS failure is temporary
            return AttemptResult("temporary", f"DNS lookup of {domain} failed: {exc}", status="4.4.3")
        if hosts == []:
            return AttemptResult("permanent", f"{domain} does not accept mail (null MX, RFC 7505)", status="5.1.10")
        if hosts is None:
            hosts = [domain]  # RFC 5321 §5.1: no MX, the domain itself is the implicit MX
        policy = await self.sts.policy(domain)
        results: list[AttemptResult] = []
        for host in hosts:
            if policy is not None and policy.mode == "enforce" and not policy.matches(host):
                results.append(
                    AttemptResult("temporary", f"MTA-STS: {host} is not in {domain}'s policy", mx=host, status="4.7.5")
                )
                continue
            found = await self._addresses(host)
            addresses = outbound.allowed(self.settings, found)
            if not addresses:
                results.append(AttemptResult("temporary", self._no_address(host, found), mx=host, status="4.4.4"))
                continue
            for address in addresses:
                result = await self._try_host(job, host, address, policy)
                if result.kind in ("delivered", "permanent"):
                    return result
                results.append(result)
                if result.reply.startswith("4"):  # the host answered: trying its other addresses will not help
                    break
        if not results:
            return AttemptResult("temporary", f"no usable MX host for {domain}", status="4.4.4")
        if all("timed out" in r.reply for r in results):
            return AttemptResult("temporary", PORT_25_HINT, mx=results[-1].mx, status="4.4.1")
        return results[-1]

    async def _addresses(self, host: str) -> list[str]:
        try:
            return await self.resolver.host_addresses(host)
        except Exception:
            return []

    def _no_address(self, host: str, found: list[str]) -> str:
        if not found:
            return f"{host} has no address"
        wanted = " or ".join(outbound.family_name(v) for v in outbound.families(self.settings))
        return (
            f"{host} has no {wanted} address (only {', '.join(found)}; "
            f"SEALMAIL_OUTBOUND_IP_FAMILY={self.settings.outbound_ip_family})"
        )

    async def _try_host(self, job: DeliveryJob, host: str, address: str, policy: StsPolicy | None) -> AttemptResult:
        enforce = policy is not None and policy.mode == "enforce"
        key = (host, address, enforce)
        cached = self.sessions.take(key)
        if cached is not None:
            try:
                await cached.client.rset()
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError):
                await _quit(cached.client)  # gone stale: a new session below
            else:
                return await self._on_session(cached, key, job, host, address)
        opened = await self._open(host, address, enforce)
        if isinstance(opened, AttemptResult):
            return opened
        return await self._on_session(opened, key, job, host, address)

    async def _open(self, host: str, address: str, enforce: bool) -> _Session | AttemptResult:
        """Connect, EHLO, STARTTLS when offered (required and verified under MTA-STS ``enforce``)."""
        source = outbound.source_address(self.settings, address)
        client = aiosmtplib.SMTP(
            hostname=address,
            port=self.settings.smtp_relay_port,
            source_address=(source, 0) if source else None,
            local_hostname=self.settings.mail_hostname,
            timeout=self.settings.smtp_timeout,
            start_tls=False,
            validate_certs=enforce,
        )
        tls = False
        try:
            await client.connect()
            await client.ehlo()
            if client.supports_extension("starttls"):
                context = self._tls if enforce else self._opportunistic
                try:
                    await client.starttls(server_hostname=host, tls_context=context, validate_certs=enforce)
                    tls = True
                    await client.ehlo()
                except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                    if enforce:
                        await _quit(client)
                        return AttemptResult(
                            "temporary", f"MTA-STS: no valid TLS at {host}: {exc}", host, False, "4.7.5"
                        )
                    raise
            elif enforce:
                await _quit(client)
                return AttemptResult("temporary", f"MTA-STS: {host} offers no STARTTLS", host, False, "4.7.5")
        except Exception as exc:
            await _quit(client)
            return _failure(exc, host, address, tls)
        return _Session(client, tls, time.monotonic(), 0)

    async def _on_session(
        self, session: _Session, key: tuple[str, str, bool], job: DeliveryJob, host: str, address: str
    ) -> AttemptResult:
        """One transaction; a session that delivered is kept for the next message to the same host."""
        keep = False
        try:
            result = await self._transaction(session.client, job, host, session.tls)
            session.transactions += 1
            keep = result.kind == "delivered"
            return result
        except Exception as exc:
            return _failure(exc, host, address, session.tls)
        finally:
            if not (keep and self.sessions.give(key, session)):
                await _quit(session.client)

    async def _transaction(self, client: aiosmtplib.SMTP, job: DeliveryJob, host: str, tls: bool) -> AttemptResult:
        mail_from = job.mail_from
        rcpt = job.rcpt_to
        needs_utf8 = job.needs_smtputf8
        mail_options: list[str] = []
        rcpt_options: list[str] = []
        if needs_utf8:
            if not client.supports_extension("smtputf8"):
                # RFC 6531 §3.5: no downgrade; the sender gets a bounce that says why.
                return AttemptResult(
                    "permanent", f"{host} does not support SMTPUTF8, which this message needs", host, tls, "5.6.7"
                )
            mail_options.append("SMTPUTF8")
        if client.supports_extension("8bitmime"):
            mail_options.append("BODY=8BITMIME")
        if client.supports_extension("dsn"):  # RFC 3461 §4: the sender's requests go on to the next hop
            mail_options += job.dsn.mail_parameters()
            rcpt_options += job.dsn.rcpt_parameters()
        message = to_wire(job.payload)  # what DATA carries (queued since the fix: already so)
        if client.supports_extension("size"):
            mail_options.append(f"SIZE={len(message)}")  # RFC 1870 §3: octets as sent, CRLFs included
        # The transaction by hand, not aiosmtplib's sendmail(), which adds a SIZE of its own: each
        # parameter appears once on MAIL (RFC 5321 §4.1.2, RFC 1870 §6), whatever the library version.
        mail_options = _once(mail_options)
        encoding = "utf-8" if needs_utf8 else "ascii"
        try:
            await client.mail(mail_from, options=mail_options, encoding=encoding)
            await client.rcpt(_envelope_address(rcpt, needs_utf8), options=rcpt_options, encoding=encoding)
            response = await client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.rset()  # the session stays usable for the next message
            text = f"{exc.code} {exc.message}"
            kind: AttemptKind = "permanent" if exc.code >= 500 else "temporary"
            return AttemptResult(kind, text, host, tls, _enhanced(text, f"{str(exc.code)[0]}.0.0"))
        return AttemptResult("delivered", response.message, host, tls, "2.0.0")

    # ---- bookkeeping ----------------------------------------------------------------------------
    async def _finish(self, job: DeliveryJob, result: AttemptResult) -> None:
        schedule = RetrySchedule(
            base=self.settings.smtp_retry_base,
            max_backoff=self.settings.smtp_max_backoff,
            max_age=self.settings.smtp_max_age,
        )
        jitter = random.uniform(0.9, 1.1)  # noqa: S311 - spreads retries apart, not security
        decision = decide(job, result, time.time(), schedule, jitter)
        sender = job.sender
        where = f"via {result.mx}" if result.mx else ""
        tls = " with TLS" if result.tls else ""
        if isinstance(decision, Done):
            await asyncio.to_thread(self.queue.done, job.id)
            status, detail = "delivered", f"to {job.rcpt_to} {where}{tls}: {result.reply}"
        elif isinstance(decision, Bounce):
            await asyncio.to_thread(self.queue.fail, job.id, decision.reply)
            status, detail = "bounced", f"to {job.rcpt_to} {where}{tls}: {decision.reply}"
        else:
            await asyncio.to_thread(self.queue.retry, job.id, result.reply, decision.delay)
            status = "deferred"
            detail = f"to {job.rcpt_to} {where}{tls}: {result.reply}; next try in {decision.delay:.0f} s"
        await self.app.log_event(
            LogEntry(
                kind="delivery",
                component="jobs",
                status=status,
                domain=sender.rsplit("@", 1)[-1] if "@" in sender else None,
                address=sender,
                peer=result.mx,
                detail=detail,
            )
        )
        if not isinstance(decision, Retry) and decision.report is not None:
            await self._notify(job, [decision.report])

    async def _notify(self, job: DeliveryJob, statuses: list[RecipientStatus]) -> None:
        """Queue a DSN to the envelope sender, from the null sender (never for a bounce itself)."""
        sender = job.mail_from
        if not sender or sender == "<>":
            return
        reporting = self.settings.mail_hostname
        postmaster_domain = self.settings.domain or reporting
        dsn = build_dsn(
            reporting_mta=reporting,
            postmaster=f"postmaster@{postmaster_domain}",
            to=sender,
            original=job.payload,
            recipients=statuses,
            envid=job.dsn.envid,
            ret=job.dsn.ret,
        )
        meta = {"origin": "dsn", "mail_from": "", "rcpt_to": sender, "smtputf8": not sender.isascii()}
        await asyncio.to_thread(self.queue.add_many, [NewJob("smtp", meta, dsn)])


def _once(options: list[str]) -> list[str]:
    """ESMTP parameters with each keyword once (the first kept), compared without case."""
    seen: set[str] = set()
    kept = []
    for option in options:
        keyword = option.partition("=")[0].upper()
        if keyword not in seen:
            seen.add(keyword)
            kept.append(option)
    return kept


def _envelope_address(address: str, utf8: bool) -> str:
    """The recipient as the envelope carries it: with SMTPUTF8 as given, else its domain in A-labels."""
    if utf8:
        return address
    try:
        return parse_mailbox(address, fold_case=False).ascii_domain_text
    except InvalidInput:
        return address


def _failure(exc: Exception, host: str, address: str, tls: bool) -> AttemptResult:
    """What a failed SMTP session means for the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0]
        reply = f"{refused.code} {refused.message}"
        kind: AttemptKind = "permanent" if refused.code >= 500 else "temporary"
        return AttemptResult(kind, reply, host, tls, _enhanced(reply, f"{str(refused.code)[0]}.0.0"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = f"{exc.code} {exc.message}"
        kind = "permanent" if exc.code >= 500 else "temporary"
        return AttemptResult(kind, reply, host, tls, _enhanced(reply, f"{str(exc.code)[0]}.0.0"))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return AttemptResult("temporary", f"connection to {host} [{address}] timed out", host, tls, "4.4.1")
    if isinstance(exc, aiosmtplib.SMTPException | OSError | ssl.SSLError):
        return AttemptResult("temporary", f"{host} [{address}]: {exc}", host, tls, "4.4.1")
    raise exc


def _opportunistic_context() -> ssl.SSLContext:
    """RFC 3207 opportunistic TLS: encrypt with any certificate rather than send in clear.

    Made once per worker: nothing is verified, so no CA store is loaded (that took ~25 ms a message).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
