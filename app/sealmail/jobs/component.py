"""``sealmail serve jobs``: the background workers. It listens on no port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.jobs.webhooks import WebhookWorker
from sealmail.queue.service import JobQueueAPI, open_queue
from sealmail.smtp.delivery import DeliveryWorker
from sealmail.smtp.forwarding import ForwardRewriter
from sealmail.smtp.inbound import InboundDelivery
from sealmail.smtp.mxresolver import DnsMx

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.jobs")


class JobsComponent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: AppContext | None = None
        self.queue: JobQueueAPI | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[WebhookWorker | DeliveryWorker] = []

    async def start(self) -> dict[str, int]:
        settings = self.settings
        self.app = AppContext(settings)
        # One host: <data>/queue.sqlite. Several (store_url): the data host's queue, through the store;
        # every front-end's workers claim from it with leases, so no job waits on a host that died.
        self.queue = open_queue(settings, self.app.mailstore)
        webhooks = WebhookWorker(self.app, self.queue)
        delivery = DeliveryWorker(
            self.app,
            self.queue,
            DnsMx(settings),
            InboundDelivery(self.app, self.queue, ForwardRewriter(settings, self.app.config)),
        )
        self._workers += [webhooks, delivery]
        self._tasks.append(asyncio.create_task(webhooks.run(self._stop), name="webhooks"))
        self._tasks.append(asyncio.create_task(delivery.run(self._stop), name="delivery"))
        self._tasks.append(asyncio.create_task(self._purge(self.queue), name="queue-purge"))
        return {}

    async def _purge(self, queue: JobQueueAPI) -> None:
        """Finished jobs past ``queue_finished_retention`` and DMARC/TLS reports past
        ``report_retention_days`` go, at start and every ``queue_purge_interval``."""
        while not self._stop.is_set():
            try:
                purged = await asyncio.to_thread(queue.purge_finished, self.settings.queue_finished_retention)
                if purged:
                    log.info("queue: %d finished job(s) purged", purged)
            except Exception:  # a busy or broken file: try again next time, keep the workers running
                log.exception("could not purge finished queue jobs")
            assert self.app is not None
            try:
                cutoff = datetime.now(UTC) - timedelta(days=self.settings.report_retention_days)
                gone = await self.app.config_call(self.app.config.remove_reports_before, cutoff)
                if gone:
                    log.info("reports: %d past their retention removed", gone)
            except Exception:  # the config store is away: next time
                log.exception("could not remove old DMARC and TLS reports")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.queue_purge_interval)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 30)
        for worker in self._workers:
            await worker.close()
        if self.queue is not None:
            self.queue.close()
        if self.app is not None:
            await self.app.close()
