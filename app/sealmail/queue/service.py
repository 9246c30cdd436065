"""The job queue in multi-server mode: it lives on the data host, front-ends reach it through the store.

On one host the MX, submission and jobs share ``<data>/queue.sqlite`` directly (``queue.store``).
With several front-ends a job must not live on the front-end that queued it: if that host dies, its
forwards, outbound mail and webhook calls would be stranded. So when ``store_url`` is set:

* the queue is the data host's ``<data>/queue.sqlite``, sealed at rest with the data host's queue
  key (as on one host), committed with ``synchronous=FULL`` before the reply (an SMTP ``250`` still
  follows an fsync, now the data host's);
* ``QueueService`` offers it over the store component's channel (mutual TLS, ``store.rpc``) as a
  fixed set of calls (``QUEUE_METHODS``, refused otherwise), and ``RemoteJobQueue`` is the
  front-end's client with the same methods as ``JobQueue``, so the MX, submission and the jobs
  workers do not know where the queue is;
* every front-end's ``jobs`` claims due jobs with a lease, as before: a job queued by a front-end
  that died is delivered by another one's worker, and a worker that dies mid-job leaves a lease that
  expires, after which another worker takes the job (at-least-once, as on one host).

While the data host is away, enqueueing fails (the MX and submission answer ``451``: the sender
retries) and the workers wait; stored mail is held by the MX's outbox meanwhile (``smtp.outbox``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sealmail.queue.store import Job, JobKind, JobQueue, NewJob, load_queue_key

if TYPE_CHECKING:
    from sealmail.settings import Settings
    from sealmail.store.remote import RemoteMailStore

KINDS = frozenset({"smtp", "webhook"})


class JobQueueAPI(Protocol):
    """What the MX, submission and the jobs workers ask of a queue (``JobQueue`` or ``RemoteJobQueue``)."""

    def add_many(self, jobs: list[NewJob], *, delay: float = 0.0) -> list[str]: ...
    def add(self, kind: JobKind, meta: dict[str, Any], payload: bytes) -> str: ...
    def claim(self, kind: JobKind, limit: int = 10, lease: float = 300.0) -> list[Job]: ...
    def done(self, job_id: str) -> None: ...
    def retry(self, job_id: str, error: str, delay: float) -> None: ...
    def fail(self, job_id: str, error: str) -> None: ...
    def next_due(self, kind: JobKind) -> float | None: ...
    def counts(self) -> dict[str, int]: ...
    def purge_finished(self, older_than: float) -> int: ...
    def close(self) -> None: ...


def open_queue(settings: Settings, mailstore: Any) -> JobQueueAPI:
    """The data host's queue through the store when ``store_url`` is set, else the local file."""
    if settings.store_url is not None:
        from sealmail.store.remote import RemoteMailStore
        from sealmail.store.routing import RoutingMailStore

        if isinstance(mailstore, RoutingMailStore):  # several data hosts: the queue is store_url's
            return RemoteJobQueue(mailstore.primary)
        if isinstance(mailstore, RemoteMailStore):
            return RemoteJobQueue(mailstore)
    key = load_queue_key(settings.data_dir, settings.queue_key.get_secret_value() if settings.queue_key else None)
    return JobQueue(settings.data_dir / "queue.sqlite", key)


class QueueService:
    """The data host's side: its ``JobQueue``, answered on the store's channel."""

    def __init__(self, data_dir: Path, key: bytes) -> None:
        self._path = data_dir / "queue.sqlite"
        self._key = key
        self._queue: JobQueue | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueService:
        configured = settings.queue_key.get_secret_value() if settings.queue_key else None
        return cls(settings.data_dir, load_queue_key(settings.data_dir, configured))

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:  # opened at the first call: a data host nobody queues on has no file
            self._queue = JobQueue(self._path, self._key)
        return self._queue

    def methods(self) -> Mapping[str, Callable[..., Awaitable[Any]]]:
        return {
            "queue_add": self.add,
            "queue_claim": self.claim,
            "queue_done": self.done,
            "queue_retry": self.retry,
            "queue_fail": self.fail,
            "queue_next_due": self.next_due,
            "queue_counts": self.counts,
            "queue_purge": self.purge,
        }

    async def add(self, jobs: list[Any], delay: float = 0.0) -> list[str]:
        new = []
        for job in jobs:
            if not isinstance(job, list) or len(job) != 3:
                raise ValueError("bad job")
            kind, meta, payload = job
            if kind not in KINDS or not isinstance(meta, dict) or not isinstance(payload, bytes):
                raise ValueError("bad job")
            new.append(NewJob(kind, meta, payload))
        return await asyncio.to_thread(self.queue.add_many, new, delay=float(delay))

    async def claim(self, kind: str, limit: int, lease: float) -> list[tuple[Any, ...]]:
        if kind not in KINDS:
            raise ValueError("bad job kind")
        jobs = await asyncio.to_thread(self.queue.claim, kind, int(limit), float(lease))  # type: ignore[arg-type]
        return [(j.id, j.kind, j.attempts, j.created_at, j.meta, j.payload) for j in jobs]

    async def done(self, job_id: str) -> None:
        await asyncio.to_thread(self.queue.done, str(job_id))

    async def retry(self, job_id: str, error: str, delay: float) -> None:
        await asyncio.to_thread(self.queue.retry, str(job_id), str(error), float(delay))

    async def fail(self, job_id: str, error: str) -> None:
        await asyncio.to_thread(self.queue.fail, str(job_id), str(error))

    async def next_due(self, kind: str) -> float | None:
        if kind not in KINDS:
            raise ValueError("bad job kind")
        return await asyncio.to_thread(self.queue.next_due, kind)  # type: ignore[arg-type]

    async def counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self.queue.counts)

    async def purge(self, older_than: float) -> int:
        return await asyncio.to_thread(self.queue.purge_finished, float(older_than))

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


class RemoteJobQueue:
    """A front-end's queue: the data host's, through its store component (blocking: call from threads)."""

    def __init__(self, store: RemoteMailStore) -> None:
        self._store = store

    def _call(self, method: str, *args: Any) -> Any:
        return self._store.blocking(lambda: self._store.call(method, *args))

    def add_many(self, jobs: list[NewJob], *, delay: float = 0.0) -> list[str]:
        ids: list[str] = self._call("queue_add", [[j.kind, j.meta, j.payload] for j in jobs], delay)
        return ids

    def add(self, kind: JobKind, meta: dict[str, Any], payload: bytes) -> str:
        return self.add_many([NewJob(kind, meta, payload)])[0]

    def claim(self, kind: JobKind, limit: int = 10, lease: float = 300.0) -> list[Job]:
        rows = self._call("queue_claim", kind, limit, lease)
        return [Job(*row) for row in rows]

    def done(self, job_id: str) -> None:
        self._call("queue_done", job_id)

    def retry(self, job_id: str, error: str, delay: float) -> None:
        self._call("queue_retry", job_id, error, delay)

    def fail(self, job_id: str, error: str) -> None:
        self._call("queue_fail", job_id, error)

    def next_due(self, kind: JobKind) -> float | None:
        due: float | None = self._call("queue_next_due", kind)
        return due

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = self._call("queue_counts")
        return found

    def purge_finished(self, older_than: float) -> int:
        purged: int = self._call("queue_purge", older_than)
        return purged

    def close(self) -> None:
        """Nothing to close: the store's channel belongs to the process's ``AppContext``."""
