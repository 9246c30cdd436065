"""Fan-out of an accepted inbound message to its aliases' actions, durably, before the SMTP 250.

Per alias: *store* (seal into the spool with the alias's public key; the MX never holds a mailbox
key), *forward* (a queued copy per forwarding address, SRS-rewritten sender), *webhook* (a queued
call per URL, retried by the jobs component). Forward and webhook jobs of one message are
enqueued in one fsynced transaction.

A message with several recipients is accepted once. When one action fails (a full disk, say) the
SMTP reply is a temporary failure so the sender retries; the actions that did succeed are
remembered for a day (keyed by a hash of the message and the alias) and are not repeated on the
retry, so nothing is lost and nothing arrives twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sealmail.addresses import is_webhook
from sealmail.config.models import Alias, LogEntry
from sealmail.queue.store import JobQueue, NewJob

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


@dataclass(slots=True)
class Outcome:
    delivered: list[str] = field(default_factory=list)  # "store:alias", "forward:addr", "webhook:url"
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class Deduplicator:
    """Remembers finished (message, alias) pairs for a day: Redis when present, else this process."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._memory: dict[str, float] = {}

    async def seen(self, key: str) -> bool:
        if self.redis is not None:
            return bool(await self.redis.exists(f"sealmail:inbound:{key}"))
        expiry = self._memory.get(key)
        return expiry is not None and expiry > time.time()

    async def remember(self, key: str) -> None:
        if self.redis is not None:
            await self.redis.set(f"sealmail:inbound:{key}", b"1", ex=DEDUP_SECONDS)
            return
        now = time.time()
        self._memory = {k: v for k, v in self._memory.items() if v > now}
        self._memory[key] = now + DEDUP_SECONDS


ForwardRewriter = Callable[[bytes, str, str], tuple[bytes, str]]


def plain_forward(message: bytes, mail_from: str, alias_address: str) -> tuple[bytes, str]:
    """No rewriting (used until sender rewriting is configured): the copy and its envelope sender."""
    return message, mail_from


class InboundDelivery:
    def __init__(self, app: AppContext, queue: JobQueue, rewrite_forward: ForwardRewriter = plain_forward) -> None:
        self.app = app
        self.queue = queue
        self.rewrite_forward = rewrite_forward
        self.dedup = Deduplicator(app.redis)

    async def deliver(
        self,
        message: bytes,
        *,
        mail_from: str,
        targets: list[Target],
        original: bytes,
        junk: bool = False,
        message_id: str | None = None,
        peer: str | None = None,
    ) -> Outcome:
        outcome = Outcome()
        mail_from = "" if mail_from == "<>" else mail_from  # the null reverse-path, one spelling from here on
        by_alias: dict[str, list[Target]] = {}
        for target in targets:
            if not target.drop:
                by_alias.setdefault(target.alias.id, []).append(target)
        digest = hashlib.sha256(original).hexdigest()
        for group in by_alias.values():
            alias = group[0].alias
            key = f"{digest}:{alias.id}"
            if await self.dedup.seen(key):
                outcome.delivered.append(f"already:{alias.id}")
                continue
            ok = await self._deliver_one(message, mail_from, alias, group, junk, message_id, peer, outcome)
            if ok:
                await self.dedup.remember(key)
        return outcome

    async def _deliver_one(
        self,
        message: bytes,
        mail_from: str,
        alias: Alias,
        group: list[Target],
        junk: bool,
        message_id: str | None,
        peer: str | None,
        outcome: Outcome,
    ) -> bool:
        address = await self.app.config_call(_display_address, self.app.config, alias)
        ok = True
        if alias.storage:
            ok &= await self._store(message, alias, address, junk, message_id, peer, outcome)
        jobs: list[NewJob] = []
        for recipient in alias.recipients:
            if is_webhook(recipient):
                meta = {
                    "url": recipient,
                    "alias": address,
                    "mail_from": mail_from,
                    "rcpt_to": [t.address for t in group],
                }
                jobs.append(NewJob("webhook", meta, message))
            else:
                copy, sender = await asyncio.to_thread(self.rewrite_forward, message, mail_from, address)
                meta = {"mail_from": sender, "rcpt_to": recipient, "origin": "forward", "alias": address}
                jobs.append(NewJob("smtp", meta, copy))
        if jobs:
            try:
                await asyncio.to_thread(self.queue.add_many, jobs)
            except Exception as exc:  # a full disk, an I/O error: the sender will retry
                log.error("could not queue %d copies for %s: %s", len(jobs), address, exc)
                outcome.failed += [f"queue:{address}"]
                await self._log(
                    LogEntry("error", "mx", "failed", alias.domain, address, message_id, peer, f"queue: {exc}")
                )
                return False
            for job in jobs:
                what = job.meta.get("url") or job.meta.get("rcpt_to")
                outcome.delivered.append(f"{job.kind}:{what}")
                status = "queued-webhook" if job.kind == "webhook" else "queued-forward"
                await self._log(LogEntry("delivery", "mx", status, alias.domain, address, message_id, peer, str(what)))
        return ok

    async def _store(
        self,
        message: bytes,
        alias: Alias,
        address: str,
        junk: bool,
        message_id: str | None,
        peer: str | None,
        outcome: Outcome,
    ) -> bool:
        credential = await self.app.config_call(self.app.config.get_credential, alias.id)
        if credential is None or not credential.has_keys or credential.public_key is None:
            # Checked at RCPT time already; the keys vanished meanwhile (a reset): try again later.
            outcome.failed.append(f"store:{address}")
            return False
        assert credential.mailbox_id is not None
        try:
            await self.app.mailstore.deliver_async(
                credential.mailbox_id, credential.public_key, message, folder="Junk" if junk else "INBOX"
            )
        except Exception as exc:
            log.error("could not store a message for %s: %s", address, exc)
            outcome.failed.append(f"store:{address}")
            await self._log(LogEntry("error", "mx", "failed", alias.domain, address, message_id, peer, f"store: {exc}"))
            return False
        outcome.delivered.append(f"store:{address}")
        await self._log(
            LogEntry("delivery", "mx", "stored", alias.domain, address, message_id, peer, "Junk" if junk else "INBOX")
        )
        return True

    async def _log(self, entry: LogEntry) -> None:
        try:
            await self.app.config_call(self.app.config.append_log, entry)
        except Exception:
            log.warning("could not write the delivery log", exc_info=True)


def _display_address(config: Any, alias: Alias) -> str:
    from sealmail.services.aliases import alias_address

    return alias_address(config, alias)
