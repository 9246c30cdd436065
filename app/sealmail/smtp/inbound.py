"""Fan-out of an accepted inbound message to its aliases' actions, durably, before the SMTP 250.

Per alias: *store* (seal into the spool with the alias's public key; the MX never holds a mailbox
key), *forward* (a queued copy per forwarding address, SRS-rewritten sender), *webhook* (a queued
call per URL, retried by the jobs component). Forward and webhook jobs of one message are
enqueued in one fsynced transaction.

A message with several recipients is accepted once. When one action fails (a full disk, say) the
SMTP reply is a temporary failure so the sender retries; the actions that did succeed are
remembered for a day (keyed by a hash of the message and the alias) and are not repeated on the
retry, so nothing is lost and nothing arrives twice.

In multi-server mode (an ``outbox`` given: the mailboxes are on a data host) the store action seals
here and hands the sealed record to the store; when the store cannot be reached the record is held
in the local outbox (``smtp.outbox``, fsynced) and the message counts as stored: held mail is handed
over later, exactly once, so remembering it as delivered never turns into a loss.

An alias with a mailbox and an active Sieve script (RFC 5228) has it run first, on the message as
it would be stored (trace fields and the spam verdict's fields included), before anything is sealed
(``smtp.sieverun``, ``smtp.sieveplan``): its copies are sealed as one record that names their
folders and flags (``store.model.Filing``); its redirects (SRS and ARC as forwards, and the loop
token of ``smtp.sieveloop``) and its vacation reply (``smtp.autoreply``, DKIM-signed, from the null
sender) are queued with the alias's forwards in the same transaction; a ``reject`` is answered at
DATA when every recipient of the message rejects it (``refuse``), else the sender gets a DSN
through the queue (RFC 5429 §2.1, RFC 3464; never to the null sender, nor for mail filed as spam:
that would be backscatter to a forged sender). The alias's own forwards and webhooks are the
administrator's and go whatever the script does, except after a reject, which refuses the message
for the whole alias. A script that cannot run keeps the message where it would have gone without
one, and the error (its line, never content) goes into the config store's log for the address.

The ``250`` waits for what makes the message durable (the fsynced spool append, the queued
copies), not for the bookkeeping after it: when every action succeeded, remembering them and
telling open sessions that sealed mail waits run beside the reply (this process counts a message
being remembered as remembered). After a failure they are awaited, as the retry depends on them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sealmail.addresses import is_webhook
from sealmail.config.models import Alias, LogEntry, LogKind
from sealmail.net.coalesce import Coalescer
from sealmail.queue.service import JobQueueAPI
from sealmail.queue.store import NewJob
from sealmail.services.dkim import fetch_keys, has_all_keys
from sealmail.sieve.actions import Redirect, Vacation
from sealmail.sieve.evaluate import Envelope, Spam
from sealmail.smtp import autoreply, dkimsign, sieveloop
from sealmail.smtp.dataread import Pieces, as_pieces
from sealmail.smtp.dataread import head as first_bytes
from sealmail.smtp.dsn import RecipientStatus, build_dsn
from sealmail.smtp.forwarding import srs_key
from sealmail.smtp.lastknown import LastKnown
from sealmail.smtp.outbox import Outbox, new_entry_id
from sealmail.smtp.sieveplan import Plan, plan, reject_reply
from sealmail.smtp.sieverun import Runner, ScriptLookup, Scripts, derived_key
from sealmail.spam.policy import MessageSpam, SpamDecision, Thresholds
from sealmail.store.errors import StoreUnavailable
from sealmail.store.model import Filing
from sealmail.store.spool import seal_message

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext

log = logging.getLogger("sealmail.mx")
DEDUP_SECONDS = 24 * 3600


@dataclass(slots=True)
class Target:
    """One accepted recipient: the address as given and the alias it resolved to."""

    address: str
    alias: Alias
    drop: bool = False  # a disabled alias whose reply is "accept and drop"
    thresholds: Thresholds | None = None  # the spam thresholds of the recipient's domain, if it set any
    sieve: ScriptLookup | None = None  # its alias's active Sieve script as RCPT found it (None: not looked up)


@dataclass(frozen=True, slots=True)
class _Stored:
    address: str  # the alias as shown
    mailbox_id: str | None  # None: not stored
    error: str | None  # why, when storing failed (None with no mailbox_id: the keys are gone)
    announce: bool = True  # tell sessions to drain (the remote store announces what it appends itself)
    entry: LogEntry | None = None  # the delivery log line, written after the trip to the worker thread


@dataclass(slots=True)
class Outcome:
    # "store:alias", "forward:addr", "webhook:url", "redirect:addr", "vacation:addr", "rejected:alias",
    # "discarded:alias"
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refusal: str | None = None  # every recipient's script rejected the message: the reply to DATA

    @property
    def ok(self) -> bool:
        return not self.failed


class Deduplicator:
    """Remembers finished (message, alias) pairs for a day: Redis when present, else this process."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._memory: dict[str, float] = {}
        self._writing: collections.Counter[str] = collections.Counter()  # keys being remembered now
        self._remembering: Coalescer[str] = Coalescer(self._set_many)  # concurrent deliveries share a trip

    async def seen_many(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` were remembered (one round trip to Redis)."""
        if not keys:
            return set()
        writing = {key for key in keys if self._writing[key]}
        if self.redis is not None:
            values = await self.redis.mget([f"sealmail:inbound:{key}" for key in keys])
            return writing | {key for key, value in zip(keys, values, strict=True) if value is not None}
        now = time.time()
        return {key for key in keys if self._memory.get(key, 0.0) > now}

    async def remember_many(self, keys: list[str]) -> None:
        if not keys:
            return
        if self.redis is not None:
            self._writing.update(keys)
            try:
                await self._remembering.submit(keys)
            finally:
                self._writing.subtract(keys)
                for key in keys:
                    if self._writing[key] <= 0:
                        del self._writing[key]
            return
        now = time.time()
        self._memory = {k: v for k, v in self._memory.items() if v > now}
        for key in keys:
            self._memory[key] = now + DEDUP_SECONDS

    async def _set_many(self, keys: list[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(f"sealmail:inbound:{key}", b"1", ex=DEDUP_SECONDS)
            await pipe.execute()


ForwardRewriter = Callable[[bytes, str, str], tuple[bytes, str]]


def plain_forward(message: bytes, mail_from: str, alias_address: str) -> tuple[bytes, str]:
    """No rewriting (used until sender rewriting is configured): the copy and its envelope sender."""
    return message, mail_from


class InboundDelivery:
    def __init__(
        self,
        app: AppContext,
        queue: JobQueueAPI,
        rewrite_forward: ForwardRewriter = plain_forward,
        outbox: Outbox | None = None,
    ) -> None:
        self.app = app
        self.queue = queue
        self.rewrite_forward = rewrite_forward
        self.outbox = outbox  # multi-server mode: seal here, hold in the outbox while the store is away
        self.dedup = Deduplicator(app.redis)
        # What RCPT and the store action look up: for when the config store fails, and reused for
        # a few seconds where each lookup is a trip to the data host (settings.mx_lookup_fresh).
        self.known = LastKnown(fresh=app.settings.mx_lookup_fresh)
        self._after: set[asyncio.Task[None]] = set()  # bookkeeping still running beside a 250
        # Sieve: the scripts (read at RCPT), the threads they run on, and keys derived from the SRS
        # secret every MX host shares (vacation memory, redirect loop tokens).
        secret = srs_key(app.settings)
        self.scripts = Scripts(fresh=app.settings.mx_lookup_fresh)
        self.runner = Runner(app.settings.mx_sieve_timeout, derived_key(secret, "vacation"))
        self.loop_key = derived_key(secret, "redirect")
        self.vacations = autoreply.Memory(app.redis)

    async def close(self) -> None:
        """Wait for the bookkeeping of messages already answered."""
        while self._after:
            await asyncio.gather(*self._after, return_exceptions=True)
        self.runner.close()

    def sieve_lookup(self, alias: Alias) -> ScriptLookup | None:
        """The alias's active script (blocking: RCPT's worker thread); None for an alias without a mailbox."""
        if not alias.storage:
            return None
        return self.scripts.lookup(self.app.config, alias.id)

    async def deliver(
        self,
        message: bytes | Pieces,
        *,
        mail_from: str,
        targets: list[Target],
        original: bytes | Pieces,
        junk: bool = False,
        spam: MessageSpam | None = None,
        message_id: str | None = None,
        peer: str | None = None,
        already: set[str] | None = None,
        keys: dict[str, str] | None = None,
        refuse: bool = False,
    ) -> Outcome:
        """Every action of every target alias.

        ``refuse``: the caller can still refuse the whole message (the MX before its reply to DATA):
        when every recipient's script rejects it, nothing is done and ``Outcome.refusal`` is the reply.

        ``junk``: file in Junk for every alias; ``spam``: the spam filter's decision, per recipient
        domain (its X-Spam-* fields go after the first piece of ``message``, the trace fields, and it
        may file in Junk for the aliases of some domains only).
        ``already``: ``already_delivered()``, if asked in advance; ``keys``: ``dedup_keys()``, if computed.
        ``message`` may come in pieces: the store action seals them as they are (no copy); a forward
        or webhook copy is joined once, when there is one.
        """
        whole = _Message(as_pieces(message))
        outcome = Outcome()
        mail_from = "" if mail_from == "<>" else mail_from  # the null reverse-path, one spelling from here on
        if keys is None:
            keys = dedup_keys(original, targets)
        if already is None:
            already = await self.already_delivered(original, targets, keys)
        finished: list[str] = []
        appended: list[str] = []  # spools that got a message: sessions holding their keys drain them
        todo: list[tuple[list[Target], _Message, bool, SpamDecision | None]] = []
        for group in _by_alias(targets).values():
            alias = group[0].alias
            if alias.id in already:
                outcome.delivered.append(f"already:{alias.id}")
                continue
            filed, alias_junk, decision = whole, junk, None
            if spam is not None:
                decision = spam.for_domain(alias.domain)
                filed, alias_junk = whole.with_fields(decision.header), junk or decision.junk
            todo.append((group, filed, alias_junk, decision))
        # Each script sees the message as its alias would store it; they run side by side.
        plans = await asyncio.gather(
            *(
                self._plan(filed, mail_from, group, alias_junk, decision, message_id, peer)
                for group, filed, alias_junk, decision in todo
            )
        )
        # RFC 5429 §2.1.1: refused at DATA when every recipient rejects (none was taken by a retry's
        # earlier attempt, none is a disabled address that takes and drops).
        every = len(todo) == len(_by_alias(targets)) and not any(t.drop for t in targets)
        if refuse and todo and every and all(p is not None and p.reject is not None for p in plans):
            return await self._refused(outcome, todo, plans, message_id, peer)
        for (group, filed, alias_junk, _), found in zip(todo, plans, strict=True):
            alias = group[0].alias
            ok = await self._deliver_one(
                filed, mail_from, alias, group, alias_junk, found, message_id, peer, outcome, appended
            )
            if ok:
                finished.append(keys[alias.id])
        bookkeeping = self._bookkeeping(finished, appended)
        if outcome.ok:  # durable already: the reply need not wait
            task = asyncio.create_task(bookkeeping)
            self._after.add(task)
            task.add_done_callback(self._after.discard)
        else:
            await bookkeeping
        return outcome

    async def _bookkeeping(self, finished: list[str], appended: list[str]) -> None:
        """Remember what was delivered; tell sessions holding a key that their spool has mail."""
        results = await asyncio.gather(
            self.dedup.remember_many(finished),
            *(self.app.mailstore.spool_appended(m) for m in appended),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("after a delivery: %s", result, exc_info=result)

    async def already_delivered(
        self, original: bytes | Pieces, targets: list[Target], keys: dict[str, str] | None = None
    ) -> set[str]:
        """Ids of the target aliases this message reached already (a retry after a partial failure).

        Depends only on the message and the recipients, so the MX asks while sender checks run.
        """
        if keys is None:
            keys = dedup_keys(original, targets)
        seen = await self.dedup.seen_many(list(keys.values()))
        return {alias_id for alias_id, key in keys.items() if key in seen}

    async def _deliver_one(
        self,
        message: _Message,
        mail_from: str,
        alias: Alias,
        group: list[Target],
        junk: bool,
        found: Plan | None,
        message_id: str | None,
        peer: str | None,
        outcome: Outcome,
        appended: list[str],
    ) -> bool:
        if found is not None and found.reject is not None:
            return await self._rejected(message, mail_from, alias, group, junk, found, message_id, peer, outcome)
        ok = True
        where = ("Junk" if junk else "INBOX") if found is None else found.filing  # None: the script stores nothing
        if alias.storage and where is not None:
            address, ok = await self._store(message.pieces, alias, where, found, message_id, peer, outcome, appended)
        else:
            address = await self.app.config_call(_display_address, self.app.config, alias)
            if found is not None and found.discarded:
                outcome.delivered.append(f"discarded:{address}")
                detail = f"by Sieve script {found.script!r}"
                await self._log(alias, address, status="discarded", detail=detail, message_id=message_id, peer=peer)
        jobs: list[NewJob] = []
        for recipient in alias.recipients:
            if is_webhook(recipient):
                meta = {
                    "url": recipient,
                    "alias": address,
                    "mail_from": mail_from,
                    "rcpt_to": [t.address for t in group],
                }
                jobs.append(NewJob("webhook", meta, message.whole()))
            else:
                copy, sender = await asyncio.to_thread(self.rewrite_forward, message.whole(), mail_from, address)
                meta = {"mail_from": sender, "rcpt_to": recipient, "origin": "forward", "alias": address}
                jobs.append(NewJob("smtp", meta, copy))
        claimed: list[str] = []  # vacation replies counted as sent (taken back if the queue fails)
        if found is not None:
            jobs += await self._script_jobs(message, mail_from, alias, group, address, found, claimed)
        if jobs:
            try:
                await asyncio.to_thread(self.queue.add_many, jobs)
            except Exception as exc:  # a full disk, an I/O error: the sender will retry
                log.error("could not queue %d copies for %s: %s", len(jobs), address, exc)
                outcome.failed += [f"queue:{address}"]
                for key in claimed:
                    with contextlib.suppress(Exception):
                        await self.vacations.release(key)
                detail = f"queue: {exc}"
                await self._log(
                    alias, address, status="failed", detail=detail, message_id=message_id, peer=peer, kind="error"
                )
                return False
            for job in jobs:
                what = job.meta.get("url") or job.meta.get("rcpt_to")
                origin = "webhook" if job.kind == "webhook" else str(job.meta.get("origin"))
                outcome.delivered.append(f"{origin}:{what}")
                status = f"queued-{origin}"
                await self._log(alias, address, status=status, detail=str(what), message_id=message_id, peer=peer)
        return ok

    async def _store(
        self,
        message: Pieces,
        alias: Alias,
        folder: str | Filing,
        found: Plan | None,
        message_id: str | None,
        peer: str | None,
        outcome: Outcome,
        appended: list[str],
    ) -> tuple[str, bool]:
        """Seal the message into the alias's spool; returns (the alias as shown, whether it is stored).

        ``folder``: INBOX or Junk, or a script's filing (``found``), whose folder names stay out of
        the log: a script can build them from the message."""
        detail = folder if isinstance(folder, str) else _filing_detail(folder, found)
        stored = await asyncio.to_thread(self._store_sync, message, alias, folder, detail, message_id, peer)
        if stored.mailbox_id is None:
            outcome.failed.append(f"store:{stored.address}")
            if stored.error is not None:
                log.error("could not store a message for %s: %s", stored.address, stored.error)
                await self._log(
                    alias,
                    stored.address,
                    status="failed",
                    detail=f"store: {stored.error}",
                    message_id=message_id,
                    peer=peer,
                    kind="error",
                )
            return stored.address, False
        if stored.entry is not None:  # with the log lines of other messages stored now (AppContext.log_event)
            await self.app.log_event(stored.entry)
        if stored.announce:
            appended.append(stored.mailbox_id)
        outcome.delivered.append(f"store:{stored.address}")
        return stored.address, True

    def _store_sync(
        self,
        message: Pieces,
        alias: Alias,
        folder: str | Filing,
        detail: str,
        message_id: str | None,
        peer: str | None,
    ) -> _Stored:
        """Everything the store action does that blocks, in one trip to a worker thread.

        The config lookups, sealing and the fsynced spool append (committed together with concurrent
        sessions' appends); the delivery log line it makes is written by the caller.
        """
        config = self.app.config
        address = self.known.through(("address", alias.id), lambda: _display_address(config, alias))
        credential = self.known.through(("credential", alias.id), lambda: config.get_credential(alias.id))
        if credential is None or not credential.has_keys or credential.public_key is None:
            # Checked at RCPT time already; the keys vanished meanwhile (a reset): try again later.
            return _Stored(address, None, None)
        assert credential.mailbox_id is not None
        status = "stored"
        try:
            if self.outbox is None:
                self.app.mailstore.deliver(credential.mailbox_id, credential.public_key, message, folder=folder)
            else:
                status = self._hand_over(credential.mailbox_id, credential.public_key, message, folder)
        except Exception as exc:
            return _Stored(address, None, str(exc))
        entry = _entry(alias, address, status=status, detail=detail, message_id=message_id, peer=peer)
        return _Stored(address, credential.mailbox_id, None, announce=self.outbox is None, entry=entry)

    def _hand_over(self, mailbox_id: str, public_key: bytes, message: Pieces, folder: str | Filing) -> str:
        """Seal here, then hand the record to the store, or hold it in the outbox while the store is away.

        The entry id is made before the first attempt: a record the store appended whose reply was
        lost is held too, and the store drops the repeat when the hand-over brings it again."""
        assert self.outbox is not None
        sealed = b"".join(seal_message(public_key, mailbox_id, message, datetime.now(UTC), folder))
        entry_id = new_entry_id()
        try:
            self.app.mailstore.deliver_sealed(mailbox_id, entry_id, sealed)
            return "stored"
        except StoreUnavailable as exc:
            self.outbox.put(entry_id, mailbox_id, sealed)  # fsynced (file and directory) before the 250
            log.warning("the mailbox store is away (%s); the sealed message is held in the outbox", exc)
            return "held"

    # ---- Sieve ------------------------------------------------------------------------------------
    async def _plan(
        self,
        message: _Message,
        mail_from: str,
        group: list[Target],
        junk: bool,
        decision: SpamDecision | None,
        message_id: str | None,
        peer: str | None,
    ) -> Plan | None:
        """The alias's script run on the message (None: it has none, or no mailbox)."""
        alias = group[0].alias
        lookup = group[0].sieve
        if lookup is None and alias.storage:  # not looked up at RCPT (a local delivery from the queue)
            lookup = await asyncio.to_thread(self.sieve_lookup, alias)
        if lookup is None or not (lookup.active or lookup.unavailable):
            return None
        config = self.app.config
        address = await asyncio.to_thread(
            self.known.through, ("address", alias.id), lambda: _display_address(config, alias)
        )
        keep_folder = "Junk" if junk else "INBOX"
        if lookup.unavailable:
            await self._log_script(
                alias,
                address,
                "sieve-unavailable",
                "the Sieve script could not be read (the config store is unreachable); the message was kept",
                message_id,
                peer,
            )
            return None
        name = lookup.name or ""
        spam = None
        if decision is not None and decision.score is not None and decision.junk_at is not None:
            spam = Spam(decision.score, decision.junk_at)
        envelope = Envelope(
            mail_from=mail_from,
            rcpt_to=group[0].address,
            alias=alias.id,
            addresses=tuple(dict.fromkeys([address, *(t.address for t in group)])),
        )
        outcome = await self.runner.run(lookup, message.whole, envelope, spam)
        redirects = any(isinstance(action, Redirect) for action in outcome.actions)
        looped = redirects and sieveloop.looped(first_bytes(message.pieces, 65536), self.loop_key, alias.id)
        found = plan(outcome, name, keep_folder, looped=looped)
        if found.error is not None:
            where = f", line {found.error_line}" if found.error_line else ""
            await self._log_script(
                alias,
                address,
                "sieve-error",
                f"Sieve script {name!r}{where}: {found.error}; the message was kept in {keep_folder}",
                message_id,
                peer,
            )
        if found.loop:
            await self._log_script(
                alias,
                address,
                "redirect-loop",
                f"Sieve script {name!r}: the message came back through this address's redirect; kept, not redirected again",
                message_id,
                peer,
                kind="delivery",
            )
        return found

    async def _log_script(
        self,
        alias: Alias,
        address: str,
        status: str,
        detail: str,
        message_id: str | None,
        peer: str | None,
        kind: LogKind = "error",
    ) -> None:
        log.log(logging.WARNING if kind == "error" else logging.INFO, "%s: %s", address, detail)
        await self._log(alias, address, status=status, detail=detail, message_id=message_id, peer=peer, kind=kind)

    async def _log(
        self,
        alias: Alias,
        address: str,
        *,
        status: str,
        detail: str,
        message_id: str | None,
        peer: str | None,
        kind: LogKind = "delivery",
    ) -> None:
        """One entry of the delivery or error log (``AppContext.log_event``: never stops mail)."""
        await self.app.log_event(
            _entry(alias, address, status=status, detail=detail, message_id=message_id, peer=peer, kind=kind)
        )

    async def _script_jobs(
        self,
        message: _Message,
        mail_from: str,
        alias: Alias,
        group: list[Target],
        address: str,
        found: Plan,
        claimed: list[str],
    ) -> list[NewJob]:
        """The redirects and the vacation reply the script asked for, ready to queue."""
        jobs: list[NewJob] = []
        if found.redirects:
            # RFC 5228 §4.2: sent on as a forward is (SRS, ARC), marked so it is never redirected twice.
            marked = sieveloop.field(self.loop_key, alias.id) + message.whole()
            for redirect in found.redirects:
                copy, sender = await asyncio.to_thread(self.rewrite_forward, marked, mail_from, address)
                meta = {"mail_from": sender, "rcpt_to": redirect.address, "origin": "redirect", "alias": address}
                jobs.append(NewJob("smtp", meta, copy))
        vacation = found.vacation
        if vacation is not None:
            try:
                fresh = await self.vacations.claim(vacation.key, vacation.days)
            except Exception as exc:  # Redis away: no reply rather than a reply to every message
                log.warning("the vacation memory could not be asked (%s): no auto-reply for %s", exc, address)
                fresh = False
            if fresh:
                claimed.append(vacation.key)
                reply = await asyncio.to_thread(self._vacation_reply, message, alias, group[0].address, vacation)
                utf8 = not (vacation.recipient.isascii() and group[0].address.isascii())
                # RFC 3834 §3.3, RFC 5230 §5: replies go from the null sender
                meta = {"origin": "vacation", "mail_from": "", "rcpt_to": vacation.recipient, "alias": address}
                jobs.append(NewJob("smtp", {**meta, "smtputf8": utf8}, reply))
        return jobs

    def _vacation_reply(self, message: _Message, alias: Alias, recipient: str, vacation: Vacation) -> bytes:
        """The reply, DKIM-signed by the alias's domain as submitted mail is (blocking: a worker thread)."""
        settings = self.app.settings
        if not has_all_keys(settings, alias.domain):
            with contextlib.suppress(Exception):  # signed with what there is, as a forward would be
                fetch_keys(settings, self.app.config, alias.domain)
        head = first_bytes(message.pieces, 65536)
        sender = autoreply.reply_from(vacation, recipient, alias.domain)
        return dkimsign.sign(settings, alias.domain, autoreply.build(vacation, head, sender, alias.domain))

    async def _rejected(
        self,
        message: _Message,
        mail_from: str,
        alias: Alias,
        group: list[Target],
        junk: bool,
        found: Plan,
        message_id: str | None,
        peer: str | None,
        outcome: Outcome,
    ) -> bool:
        """A reject after the message was accepted for others: a DSN to the sender (RFC 5429 §2.1)."""
        assert found.reject is not None
        address = await self.app.config_call(_display_address, self.app.config, alias)
        reply = reject_reply(found.reject.reason)
        if not mail_from:
            told = "no report: the sender is null"  # RFC 5429 §2.1, RFC 3834: never a bounce to a bounce
        elif junk:
            told = "no report: filed as spam, the sender is likely forged"
        else:
            settings = self.app.settings
            dsn = build_dsn(
                reporting_mta=settings.mail_hostname,
                postmaster=f"postmaster@{settings.domain or settings.mail_hostname}",
                to=mail_from,
                original=message.whole(),
                recipients=[RecipientStatus(group[0].address, "failed", "5.7.1", diagnostic=reply)],
                ret="HDRS",  # the header says which message; its content need not travel back
            )
            meta = {"origin": "dsn", "mail_from": "", "rcpt_to": mail_from, "smtputf8": not mail_from.isascii()}
            try:
                await asyncio.to_thread(self.queue.add_many, [NewJob("smtp", meta, dsn)])
            except Exception as exc:
                log.error("could not queue the rejection report for %s: %s", address, exc)
                outcome.failed.append(f"queue:{address}")
                return False
            told = "a delivery status notification is queued to the sender"
        outcome.delivered.append(f"rejected:{address}")
        # the reason stays out of the log: a script can build it from the message
        detail = f"by Sieve script {found.script!r}; {told}"
        await self._log(alias, address, status="rejected", detail=detail, message_id=message_id, peer=peer)
        return True

    async def _refused(
        self,
        outcome: Outcome,
        todo: list[tuple[list[Target], _Message, bool, SpamDecision | None]],
        plans: list[Plan | None],
        message_id: str | None,
        peer: str | None,
    ) -> Outcome:
        """Every recipient's script rejected the message: refused at DATA, nothing done (RFC 5429 §2.1.1)."""
        first = plans[0]
        assert first is not None
        assert first.reject is not None
        outcome.refusal = reject_reply(first.reject.reason)
        for (group, *_), found in zip(todo, plans, strict=True):
            alias = group[0].alias
            address = await self.app.config_call(_display_address, self.app.config, alias)
            script = found.script if found is not None else ""
            detail = f"by Sieve script {script!r}, answered at DATA (550 5.7.1)"
            await self._log(alias, address, status="rejected", detail=detail, message_id=message_id, peer=peer)
        return outcome


def _entry(
    alias: Alias,
    address: str,
    *,
    status: str,
    detail: str,
    message_id: str | None,
    peer: str | None,
    kind: LogKind = "delivery",
) -> LogEntry:
    """The MX's log entry about one message for one alias (``address``: the alias as shown):
    metadata only, never content."""
    return LogEntry(
        kind=kind,
        component="mx",
        status=status,
        domain=alias.domain,
        address=address,
        message_id=message_id,
        peer=peer,
        detail=detail,
    )


def _filing_detail(filing: Filing, found: Plan | None) -> str:
    script = found.script if found is not None else ""
    count = len(filing.copies)
    return f"{count} folder{'s' if count != 1 else ''} by Sieve script {script!r}"


class _Message:
    """A message in pieces, joined at most once, when a copy of it is queued."""

    __slots__ = ("_variants", "_whole", "pieces")

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = pieces
        self._whole: bytes | None = None
        self._variants: dict[bytes, _Message] = {}

    def with_fields(self, fields: bytes) -> _Message:
        """The message with ``fields`` after its first piece (the trace fields); one per distinct
        ``fields``, so recipients of domains that decided alike share its pieces and its copy."""
        if not fields:
            return self
        found = self._variants.get(fields)
        if found is None:
            first, rest = (self.pieces[0], self.pieces[1:]) if self.pieces else (b"", [])
            found = self._variants[fields] = _Message([bytes(first) + fields, *rest])
        return found

    def whole(self) -> bytes:
        if self._whole is None:
            self._whole = b"".join(self.pieces)
        return self._whole


def _by_alias(targets: list[Target]) -> dict[str, list[Target]]:
    """The targets that get the message, by alias (several addresses may reach one alias)."""
    by_alias: dict[str, list[Target]] = {}
    for target in targets:
        if not target.drop:
            by_alias.setdefault(target.alias.id, []).append(target)
    return by_alias


def dedup_keys(original: bytes | Pieces, targets: list[Target]) -> dict[str, str]:
    """Alias id -> the key that marks this message delivered to it."""
    sha = hashlib.sha256()
    for piece in as_pieces(original):
        sha.update(piece)
    digest = sha.hexdigest()
    return {alias_id: f"{digest}:{alias_id}" for alias_id in _by_alias(targets)}


def _display_address(config: Any, alias: Alias) -> str:
    from sealmail.services.aliases import alias_address

    return alias_address(config, alias)
