"""Webhook calls for aliases whose recipients include an http(s) URL.

Each queued call is a POST of a JSON document describing the message (envelope, headers, text
and HTML parts, attachment metadata, and the raw message as base64), signed with HMAC-SHA256 over
the exact body: ``X-Sealmail-Signature: sha256=<hex>``. ``X-Sealmail-Delivery`` carries a stable id
so a receiver can drop a repeat (a crash between the receiver's 2xx and our bookkeeping can cause
one). Anything but a 2xx is retried with exponential backoff until ``webhook_max_age``; every
attempt goes to the delivery log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.message
import email.policy
import hashlib
import hmac
import json
import logging
import random
import ssl
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from sealmail.config.models import LogEntry
from sealmail.keyfiles import secret_file
from sealmail.net.egress import EgressRefused, url_problem, webhook_client
from sealmail.queue.service import JobQueueAPI
from sealmail.queue.store import Job
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.jobs.webhooks")
MAX_BACKOFF = 3600.0
SIGNATURE_HEADER = "X-Sealmail-Signature"
DELIVERY_HEADER = "X-Sealmail-Delivery"


def load_webhook_secret(settings: Settings) -> bytes:
    """The configured secret, else the base64 text of ``<data>/webhook.key`` (made once, mode 0600)."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value().encode()
    return base64.b64encode(secret_file(settings.data_dir / "webhook.key"))


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def build_document(job: Job) -> bytes:
    """The JSON body for a queued message; never raises on a malformed message."""
    raw = job.payload
    doc: dict[str, Any] = {
        "id": job.id,
        "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
        "alias": job.meta.get("alias"),
        "envelope": {"mail_from": job.meta.get("mail_from"), "rcpt_to": job.meta.get("rcpt_to", [])},
        "headers": [],
        "subject": None,
        "from": None,
        "to": None,
        "message_id": None,
        "text": None,
        "html": None,
        "attachments": [],
        "size": len(raw),
        "raw": base64.b64encode(raw).decode("ascii"),
    }
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        doc["headers"] = [[k, str(v)] for k, v in msg.items()]
        for key, name in (("subject", "Subject"), ("from", "From"), ("to", "To"), ("message_id", "Message-ID")):
            value = msg.get(name)
            doc[key] = str(value) if value is not None else None
        for part in msg.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            disposition = part.get_content_disposition()
            if filename or disposition == "attachment":
                payload = _decoded(part)
                doc["attachments"].append(
                    {
                        "filename": filename,
                        "content_type": part.get_content_type(),
                        "size": len(payload),
                        "sha256": hashlib.sha256(payload).hexdigest(),
                    }
                )
            elif part.get_content_type() in ("text/plain", "text/html"):
                key = "text" if part.get_content_subtype() == "plain" else "html"
                if doc[key] is None:
                    try:
                        doc[key] = part.get_content()
                    except (LookupError, ValueError):
                        doc[key] = _decoded(part).decode("utf-8", "replace")
    except Exception:  # a message the parser cannot read still goes out, as raw
        log.info("webhook %s: message not parsed; sending raw only", job.id)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


class WebhookWorker:
    def __init__(self, app: AppContext, queue: JobQueueAPI, concurrency: int = 8) -> None:
        self.app = app
        self.settings = app.settings
        self.queue = queue
        self.secret = load_webhook_secret(app.settings)
        self.concurrency = concurrency
        verify: ssl.SSLContext | bool = True
        if self.settings.webhook_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.webhook_ca_file))
        self.client = webhook_client(self.settings, verify, self.settings.webhook_timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                jobs = await asyncio.to_thread(
                    self.queue.claim, "webhook", self.concurrency, 2 * self.settings.webhook_timeout
                )
            except StoreUnavailable:  # the queue is on a data host that is away: wait, then ask again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            if jobs:
                await asyncio.gather(*(self.attempt(job) for job in jobs))
                continue
            try:
                due = await asyncio.to_thread(self.queue.next_due, "webhook")
            except StoreUnavailable:
                due = None
            wait = 1.0 if due is None else min(1.0, max(0.05, due - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def attempt(self, job: Job) -> None:
        url = job.meta["url"]
        body = build_document(job)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Sealmail-Webhook/1",
            SIGNATURE_HEADER: sign(self.secret, body),
            DELIVERY_HEADER: job.id,
        }
        alias = job.meta.get("alias")
        domain = alias.rsplit("@", 1)[-1] if alias else None
        refused = url_problem(url, allow_private=self.settings.webhook_allow_private)
        try:
            if refused is not None:
                raise EgressRefused(refused)
            response = await self.client.post(url, content=body, headers=headers)
            outcome = f"HTTP {response.status_code}"
            success = 200 <= response.status_code < 300
        except EgressRefused as exc:
            # A forbidden target (saved before the policy, or a name that now resolves inward): no
            # connection was made, and none will be; the job fails at once with the reason.
            log.warning("webhook %s refused: %s", job.id, exc)
            await asyncio.to_thread(self.queue.fail, job.id, f"refused: {exc}")
            await self.app.log_event(
                LogEntry(
                    "error", "jobs", "webhook-failed", domain=domain, address=alias, detail=f"{url} refused: {exc}"
                )
            )
            return
        except (httpx.HTTPError, OSError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"[:300]
            success = False
        if success:
            await asyncio.to_thread(self.queue.done, job.id)
            await self.app.log_event(
                LogEntry(
                    "delivery", "jobs", "webhook-delivered", domain=domain, address=alias, detail=f"{url} {outcome}"
                )
            )
            return
        age = time.time() - job.created_at
        if age >= self.settings.webhook_max_age:
            await asyncio.to_thread(self.queue.fail, job.id, outcome)
            await self.app.log_event(
                LogEntry(
                    "error", "jobs", "webhook-failed", domain=domain, address=alias, detail=f"{url} gave up: {outcome}"
                )
            )
            return
        delay = min(MAX_BACKOFF, self.settings.webhook_retry_base * 2 ** (job.attempts - 1))
        delay *= random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security
        await asyncio.to_thread(self.queue.retry, job.id, outcome, delay)
        await self.app.log_event(
            LogEntry(
                "delivery",
                "jobs",
                "webhook-deferred",
                domain=domain,
                address=alias,
                detail=f"{url} {outcome}; retry in {delay:.0f} s",
            )
        )


def _decoded(part: email.message.Message) -> bytes:
    """A leaf part's body with its transfer encoding undone (empty when it has none)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
