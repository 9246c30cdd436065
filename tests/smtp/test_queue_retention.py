"""A finished job leaves nothing behind in the queue's files: neither its ciphertext (SQLite keeps
deleted content in free pages and old WAL frames unless told otherwise) nor, after the retention
time, the addresses in its row. The jobs component purges on a timer."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from sealmail.jobs.component import JobsComponent
from sealmail.queue.store import JobQueue, NewJob, load_queue_key

RCPT = "far-away-recipient-7f3a@remote.test"
SENDER = "quiet-sender-91c2@example.test"


def _file_bytes(db: Path) -> bytes:
    """The database file and its WAL, as a thief with a copy of the disk would read them."""
    data = db.read_bytes()
    wal = db.with_name(db.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def _sealed_payload(db: Path, job_id: str) -> bytes:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT payload FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def _finished_job(queue: JobQueue, size: int) -> tuple[str, bytes]:
    job_id = queue.add("smtp", {"mail_from": SENDER, "rcpt_to": RCPT}, os.urandom(size))
    sealed = _sealed_payload(queue.path, job_id)
    (claimed,) = queue.claim("smtp")
    queue.done(claimed.id)
    return job_id, sealed


def _pieces(blob: bytes, width: int = 24) -> list[bytes]:
    return [blob[i : i + width] for i in range(0, len(blob) - width, 997)]


def _library_without_secure_delete(monkeypatch) -> None:
    """Debian builds SQLite with SECURE_DELETE on by default; other builds (pyenv's, other
    distributions) leave it off. Connections start with it off here, as they would there."""
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_finished_ciphertext_and_addresses_are_gone_from_the_file_and_wal_after_purge(settings, monkeypatch) -> None:
    _library_without_secure_delete(monkeypatch)
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        # One payload inside a table page, one spilling over many overflow pages.
        finished = [_finished_job(queue, 1500), _finished_job(queue, 300_000)]
        queue.purge_finished(0.0)
        left = _file_bytes(queue.path)
    finally:
        queue.close()
    for _, sealed in finished:
        assert len(sealed) > 1000
        assert not any(piece in left for piece in _pieces(sealed)), "ciphertext of a finished job remains on disk"
    assert RCPT.encode() not in left
    assert SENDER.encode() not in left


def test_pending_jobs_are_kept_and_finished_ones_only_after_the_retention_time(settings) -> None:
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        _finished_job(queue, 100)
        pending = queue.add("smtp", {"rcpt_to": "waiting@remote.test"}, b"x")
        assert queue.purge_finished(3600.0) == 0  # finished just now: kept for the retention time
        assert queue.purge_finished(0.0) == 1
        assert queue.counts() == {"smtp:pending": 1}
        assert queue.claim("smtp")[0].id == pending
    finally:
        queue.close()


async def test_the_jobs_component_purges_finished_jobs_on_a_timer(settings) -> None:
    settings = settings.model_copy(update={"queue_finished_retention": 0.0, "queue_purge_interval": 0.2})
    key = load_queue_key(settings.data_dir)
    path = settings.data_dir / "queue.sqlite"
    jobs = JobsComponent(settings)
    await jobs.start()
    try:
        assert "queue-purge" in {task.get_name() for task in jobs._tasks}
        queue = JobQueue(path, key)  # another process's connection (the MX's, the submission's)
        try:
            # Not due for an hour (no worker takes it): finished by hand, as a worker would.
            for _ in range(2):
                (job_id,) = queue.add_many([NewJob("webhook", {"alias": SENDER}, b"{}")], delay=3600)
                queue.done(job_id)
                deadline = asyncio.get_running_loop().time() + 10
                while queue.counts() and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                assert queue.counts() == {}  # purged, and again on the next tick
        finally:
            queue.close()
    finally:
        await jobs.stop()
    assert SENDER.encode() not in _file_bytes(path)
