"""Spam-learning jobs of a mailbox: messages the user filed into or out of Junk, waiting to be taught.

The store only keeps them; what a filing means is ``spam.learning`` and who teaches rspamd is
``services.spamlearning``. Jobs live in the encrypted file (table ``learn_jobs``), never anywhere
else: the plaintext to learn from is the stored message, read by a process holding the key.

``queue`` runs inside the COPY/MOVE's own write transaction, so a filing that committed has its
job and one that did not has none. One job per body: the latest filing decides its class (in,
then out again before it was learned: ham only). A job goes with its body (``rows.release_body``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sealmail.store.mailboxdb import MailboxDB, chunks
from sealmail.store.model import LEARN_KINDS, LearnJob


class LearnJobs:
    def __init__(self, db: MailboxDB) -> None:
        self._db = db

    def queue(self, folder_id: int, uids: Sequence[int], kind: str) -> None:
        """Jobs for the bodies of these messages; call inside an open write transaction."""
        if kind not in LEARN_KINDS:
            raise ValueError(f"unknown learning class {kind!r}")
        db = self._db.conn
        for chunk in chunks(sorted(uids), 500):
            marks = ",".join("?" * len(chunk))
            db.execute(
                "INSERT INTO learn_jobs (id, kind, attempts) "
                f"SELECT DISTINCT body_id, ?, 0 FROM messages WHERE folder_id = ? AND uid IN ({marks}) "
                "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, attempts = 0",
                [kind, folder_id, *chunk],
            )

    def pending(self, limit: int) -> list[LearnJob]:
        """Up to ``limit`` waiting jobs, the fewest-tried first (one stubborn message never blocks the rest)."""
        with self._db.read() as db:
            rows: list[tuple[int, str, int]] = db.execute(
                "SELECT id, kind, attempts FROM learn_jobs ORDER BY attempts, id LIMIT ?", (limit,)
            ).fetchall()
        return [LearnJob(*row) for row in rows]

    def finish(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int:
        """Forget the jobs ``done``; count a try against each of ``failed`` and drop those out of tries.

        Only a job still asking for the class that was tried changes: one the user re-filed meanwhile
        (spam became ham) waits for its new class. Returns how many jobs were dropped unlearned.
        """
        dropped = 0
        with self._db.write():
            db = self._db.conn
            db.executemany("DELETE FROM learn_jobs WHERE id = ? AND kind = ?", [(j.body_id, j.kind) for j in done])
            for job in failed:
                db.execute(
                    "UPDATE learn_jobs SET attempts = attempts + 1 WHERE id = ? AND kind = ?", (job.body_id, job.kind)
                )
                gone = db.execute(
                    "DELETE FROM learn_jobs WHERE id = ? AND kind = ? AND attempts >= ?",
                    (job.body_id, job.kind, max_attempts),
                )
                dropped += gone.rowcount
        return dropped
