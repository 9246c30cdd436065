"""A durable job queue in one SQLite file (``<data>/queue.sqlite``), shared by the MX, submission and jobs.

Every enqueue is committed with ``synchronous=FULL`` before it returns, so an SMTP ``250`` is only
given for work that survives a crash. Writes that arrive together (enqueues from concurrent
sessions, workers finishing jobs) share one transaction and one fsync (group commit,
``sealmail.store.groupcommit``); each still returns only once it is on disk. Workers *claim* due jobs with a lease: a worker killed
mid-job leaves a lease that expires, and the job is tried again (at-least-once; receivers get a
stable delivery id to deduplicate on).

Payloads are message copies: they are encrypted with the server's queue key (ChaCha20-Poly1305,
the job id as associated data). That key lives on the same server, so this protects copies of the
disk (backups, discarded drives) rather than a seized running host — mail in transit to another
server is necessarily readable by the server that sends it.

Nothing of a finished job lingers in the files: ``secure_delete`` makes SQLite overwrite deleted
content with zeros (a finished job's payload at once, its row when it is purged) instead of leaving
it in free pages, and ``purge_finished`` — run on a timer by the jobs component — deletes rows past
their retention time (their addresses) and truncates the WAL, whose old frames still hold earlier
versions of the pages.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sealmail.config.models import new_id
from sealmail.keyfiles import secret_file
from sealmail.store.groupcommit import GroupCommit
from sealmail.walmode import enable_wal

JobKind = Literal["smtp", "webhook"]
JobStatus = Literal["pending", "done", "failed"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (kind, status, next_attempt_at);
"""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: JobKind
    attempts: int
    created_at: float
    meta: dict[str, Any]
    payload: bytes


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: JobKind
    meta: dict[str, Any]
    payload: bytes


def load_queue_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured key (base64), else ``<data>/queue.key``, made once with mode 0600."""
    if configured:
        key = base64.b64decode(configured)
        if len(key) != 32:
            raise ValueError("the queue key must be 32 bytes, base64-encoded")
        return key
    return secret_file(data_dir / "queue.key")


class JobQueue:
    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._aead = ChaCha20Poly1305(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._lock = threading.Lock()
        enable_wal(self._db)
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA busy_timeout = 30000")
        # Per connection: every connection that deletes or overwrites must zero what it frees.
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(SCHEMA)
        self._group: GroupCommit[Callable[[], Any], Any] = GroupCommit(self._lock, self._transaction)

    @property
    def commits(self) -> int:
        """Write transactions committed (fewer than writes when they arrive together)."""
        return self._group.commits

    def _transaction(self, writes: list[Callable[[], Any]]) -> list[Any]:
        """Run the writes of a group commit in one fsynced transaction; called with ``_lock`` held."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            results = [write() for write in writes]
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return results

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _seal(self, job_id: str, payload: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, payload, job_id.encode())

    def _open(self, job_id: str, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], job_id.encode())

    def add_many(self, jobs: list[NewJob], *, delay: float = 0.0) -> list[str]:
        """Enqueue several jobs in one fsynced transaction; returns their ids."""
        now = time.time()
        ids = [new_id() for _ in jobs]
        rows = [
            (
                job_id,
                job.kind,
                now,
                now + delay,
                json.dumps(job.meta, ensure_ascii=False),
                self._seal(job_id, job.payload),
            )
            for job_id, job in zip(ids, jobs, strict=True)
        ]
        self._group.run(
            lambda: self._db.executemany(
                "INSERT INTO jobs (id, kind, created_at, next_attempt_at, meta, payload) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        )
        return ids

    def add(self, kind: JobKind, meta: dict[str, Any], payload: bytes) -> str:
        return self.add_many([NewJob(kind, meta, payload)])[0]

    def claim(self, kind: JobKind, limit: int = 10, lease: float = 300.0) -> list[Job]:
        """Due jobs of ``kind``, leased to the caller for ``lease`` seconds."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, kind, attempts, created_at, meta, payload FROM jobs "
                    "WHERE kind = ? AND status = 'pending' AND next_attempt_at <= ? AND leased_until <= ? "
                    "ORDER BY next_attempt_at LIMIT ?",
                    (kind, now, now, limit),
                ).fetchall()
                self._db.executemany(
                    "UPDATE jobs SET leased_until = ?, attempts = attempts + 1 WHERE id = ?",
                    [(now + lease, r[0]) for r in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [Job(r[0], r[1], r[2] + 1, r[3], json.loads(r[4]), self._open(r[0], r[5])) for r in rows]

    def done(self, job_id: str) -> None:
        """Finished: the payload is dropped at once (no message copy is kept longer than needed)."""
        self._group.run(
            lambda: self._db.execute(
                "UPDATE jobs SET status = 'done', payload = x'', leased_until = 0 WHERE id = ?", (job_id,)
            )
        )

    def retry(self, job_id: str, error: str, delay: float) -> None:
        self._group.run(
            lambda: self._db.execute(
                "UPDATE jobs SET next_attempt_at = ?, leased_until = 0, last_error = ? WHERE id = ?",
                (time.time() + delay, error[:1000], job_id),
            )
        )

    def fail(self, job_id: str, error: str) -> None:
        self._group.run(
            lambda: self._db.execute(
                "UPDATE jobs SET status = 'failed', payload = x'', leased_until = 0, last_error = ? WHERE id = ?",
                (error[:1000], job_id),
            )
        )

    def next_due(self, kind: JobKind) -> float | None:
        """When the earliest pending job of ``kind`` is due (a worker sleeps until then)."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(max(next_attempt_at, leased_until)) FROM jobs WHERE kind = ? AND status = 'pending'",
                (kind,),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT kind || ':' || status, count(*) FROM jobs GROUP BY kind, status").fetchall()
        return dict(rows)

    def purge_finished(self, older_than: float) -> int:
        """Delete finished (done or failed) jobs queued more than ``older_than`` seconds ago, then copy
        the WAL into the database and truncate it, so no earlier page version (with a payload or an
        address) stays in it. Returns how many jobs were deleted.

        The truncation waits for readers in other processes (``busy_timeout``); when one still holds
        an old snapshot, the WAL is left for the next run (the data pages are zeroed either way).
        """
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM jobs WHERE status != 'pending' AND created_at < ?", (time.time() - older_than,)
            )
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return cur.rowcount
