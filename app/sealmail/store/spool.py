"""The sealed inbound spool of one mailbox.

The MX holds only the alias's public key: it seals each message (``sealmail.crypto.sealed``) and
appends it here, one record per message, committed with ``synchronous=FULL`` (fsynced) before the
SMTP ``250``; appends that arrive together share one transaction and one fsync (group commit,
``sealmail.store.groupcommit``), and each still returns only once it is on disk. The file is a plain SQLite database: every record is a sealed blob that nothing on
the server can open. Sequence numbers come from AUTOINCREMENT, so they are never reused even after
records are deleted; the mailbox remembers the last one it drained (exactly-once drain).

The sealed payload is ``version (1) || received-at ms (8) || folder length (2) || folder || raw message``
(big endian): the arrival time becomes the IMAP INTERNALDATE, and the folder (INBOX, or Junk for
quarantined mail) is sealed too. A message a Sieve script filed (``model.Filing``: several folders,
flags, ``:create``) is payload version 2, ``2 || received-at ms (8) || filing length (4) || filing ||
raw message``, the filing as JSON: one sealed body for every copy, so the drain stores them all in
the transaction that marks the record drained (each copy exactly once). Mail no script touched
stays version 1, byte for byte what it was.

The MX seals in segments (``crypto.sealed`` version 2) and writes each sealed segment into the
record as it is made (SQLite incremental blob I/O into a ``zeroblob`` of the sealed size), so a
large message is held once, as the plaintext it received, never again as one ciphertext.

A record handed over from another host (an MX's outbox, ``smtp.outbox``) carries an entry id:
``append_once`` commits the id with the record, in the same transaction, and a second hand-over of
the same id (the first one's reply was lost, or the sender crashed before forgetting its copy)
appends nothing and answers the first record's sequence number. Ids are kept ``HANDED_SECONDS``.

Test hook: ``SEALMAIL_TEST_SPOOL_COMMIT_DELAY`` (seconds, read once at import; unset or 0 in
production, where it does nothing) holds each append transaction open that long before COMMIT. The
kill -9 test (tests/smtp/test_mx_durability.py) sets it so SIGKILL reliably lands while appends
are uncommitted: a spool that answered ``250`` before COMMIT would then lose mail visibly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, cast

from sealmail.crypto.sealed import Buffer, SealedStream, SealError, open_sealed, seal_stream
from sealmail.store.groupcommit import GroupCommit
from sealmail.store.model import INBOX, Filing, Placement

PAYLOAD_VERSION = 1  # one folder
FILED_VERSION = 2  # a Sieve script's filing
_PAYLOAD_HEAD = struct.Struct(">BQH")  # version, received-at ms, length of the target folder name
_FILED_HEAD = struct.Struct(">BQI")  # version, received-at ms, length of the filing (JSON)
Record = bytes | SealedStream  # a sealed blob, or a message sealed as it is written
Entry = tuple[Record, str | None]  # a record and the entry id it was handed over with, if any
HANDED_SECONDS = 30 * 24 * 3600  # how long a handed-over entry id is remembered (repeats dropped)
_TEST_COMMIT_DELAY = float(os.environ.get("SEALMAIL_TEST_SPOOL_COMMIT_DELAY") or 0)  # see the docstring


class RecordHandoff(Protocol):
    """Another process that appends sealed records to this host's spools (``MailStore.deliver``)."""

    limit: int  # the largest record it takes, in octets

    def append(self, mailbox_id: str, record: bytes) -> int:
        """The record's sequence number, once it is committed (fsynced); raises when it is not."""
        ...


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Writers in other processes (several MX processes, the session draining it) queue on this
        # flock, woken by the kernel the moment it is free, instead of in SQLite's busy handler,
        # which sleeps for milliseconds at a time.
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock = threading.Lock()
        try:
            # Two processes creating the file at once: switching to WAL and creating the table each
            # need the file alone, and SQLite answers "locked" at once rather than wait for that.
            with self._writing():
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
                self._db.execute("PRAGMA busy_timeout = 30000")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")  # every committed record is on disk
                self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")  # one transaction
                # Readers (the quota question at every RCPT) never queue behind a commit in flight.
                self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
                self._reader.execute("PRAGMA busy_timeout = 30000")
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._reader_lock = threading.Lock()
        self._group: GroupCommit[list[Entry], list[int]] = GroupCommit(self._lock, self._insert)

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._db.close()
            self._reader.close()
            os.close(self._lock_fd)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The cross-process writer lock (``_lock`` held)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, sealed: Record) -> int:
        """Durably append one sealed record; returns its sequence number."""
        return self.append_many([sealed])[0]

    def append_many(self, records: list[Record]) -> list[int]:
        """Durably append records (one transaction, fsynced); returns their sequence numbers.

        Concurrent callers are committed together (group commit); each gets its own numbers.
        """
        return self._group.run([(record, None) for record in records])

    def append_once(self, sealed: Record, entry_id: str) -> int:
        """Durably append a handed-over record unless ``entry_id`` was appended before.

        Returns the record's sequence number (the first one's, for a repeat)."""
        return self._group.run([(sealed, entry_id)])[0]

    def append_groups(self, groups: list[list[Record]]) -> list[list[int] | Exception]:
        """Several writers' records in one transaction and one fsync (the MX's spool writer batches
        for its session processes); each group gets its sequence numbers, or the error that kept it
        out. A batch that fails is retried group by group, so a bad group fails alone."""
        with self._lock:
            try:
                return list(self._insert([[(r, None) for r in group] for group in groups]))
            except Exception:  # noqa: S110 - rolled back; each group is tried alone below
                pass
        results: list[list[int] | Exception] = []
        for group in groups:
            try:
                results.append(self.append_many(group))
            except Exception as exc:
                results.append(exc)
        return results

    @property
    def commits(self) -> int:
        """Transactions that appended records (fewer than appends under concurrency)."""
        return self._group.commits

    def _insert(self, batch: list[list[Entry]]) -> list[list[int]]:
        """One transaction for every request of a group commit; called with ``_lock`` held."""
        with self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if any(entry_id is not None for entries in batch for _, entry_id in entries):
                    self._db.execute("DELETE FROM handed WHERE at < ?", (time.time() - HANDED_SECONDS,))
                seqs = [[self._insert_handed(r, entry_id) for r, entry_id in entries] for entries in batch]
                if _TEST_COMMIT_DELAY:
                    time.sleep(_TEST_COMMIT_DELAY)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return seqs

    def _insert_handed(self, record: Record, entry_id: str | None) -> int:
        if entry_id is None:
            return self._insert_one(record)
        row = self._db.execute("SELECT seq FROM handed WHERE id = ?", (entry_id,)).fetchone()
        if row is not None:
            return int(row[0])  # handed over before: the record is in the spool (or drained) already
        seq = self._insert_one(record)
        self._db.execute("INSERT INTO handed (id, seq, at) VALUES (?, ?, ?)", (entry_id, seq, time.time()))
        return seq

    def _insert_one(self, record: Record) -> int:
        if not isinstance(record, SealedStream):
            return self._db.execute("INSERT INTO spool (sealed) VALUES (?)", (record,)).lastrowid  # type: ignore[return-value]
        # The sealed size is known before sealing: reserve it, then write each segment as it is made.
        seq = self._db.execute("INSERT INTO spool (sealed) VALUES (zeroblob(?))", (len(record),)).lastrowid
        assert seq is not None
        with self._db.blobopen("spool", "sealed", seq) as blob:
            for piece in record:
                blob.write(piece)
        return seq

    def pending(self, after: int) -> Iterator[tuple[int, bytes]]:
        """Records with a sequence number above ``after``, oldest first."""
        last = after
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, sealed FROM spool WHERE seq > ? ORDER BY seq LIMIT 64", (last,)
                ).fetchall()
            if not rows:
                return
            for seq, sealed in rows:
                yield seq, sealed
                last = seq

    def records(self, seqs: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """The records with these sequence numbers that are still here, oldest first."""
        wanted = sorted(set(seqs))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT seq, sealed FROM spool WHERE seq IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk
                ).fetchall()
            yield from rows

    def delete_through(self, seq: int, keep: frozenset[int] = frozenset()) -> None:
        """Forget drained records (those in ``keep`` failed to open and stay for inspection)."""
        with self._lock, self._writing():
            if keep:
                marks = ",".join("?" * len(keep))
                self._db.execute(f"DELETE FROM spool WHERE seq <= ? AND seq NOT IN ({marks})", (seq, *keep))
            else:
                self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def count(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
            return count

    def size(self) -> int:
        """Octets waiting (sealed), for quota checks before the owner next signs in.

        One row (``spool_size``, kept by triggers in every writer's transaction), read on this
        handle's reader connection: it never waits for an append's commit.
        """
        with self._reader_lock:
            size: int = self._reader.execute("SELECT bytes FROM spool_size WHERE id = 0").fetchone()[0]
            return size


# The spool, and the octets it holds kept beside it by triggers (so whichever connection or
# process appends or drains keeps the total right, in the same transaction). A spool made before
# the total was kept is summed once, here, under the writer lock.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS spool_size (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS handed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS handed_at ON handed (at);
INSERT OR IGNORE INTO spool_size (id, bytes) SELECT 0, coalesce(sum(length(sealed)), 0) FROM spool;
CREATE TRIGGER IF NOT EXISTS spool_size_added AFTER INSERT ON spool BEGIN
    UPDATE spool_size SET bytes = bytes + length(NEW.sealed) WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS spool_size_removed AFTER DELETE ON spool BEGIN
    UPDATE spool_size SET bytes = bytes - length(OLD.sealed) WHERE id = 0;
END;
"""


def seal_message(
    public_key: bytes,
    mailbox_id: str,
    raw: Buffer | Sequence[Buffer],
    received_at: datetime,
    folder: str | Filing = INBOX,
) -> SealedStream:
    """The spool record for ``raw`` (a message, or a message in pieces: they are not joined)."""
    millis = int(received_at.timestamp() * 1000)
    if isinstance(folder, Filing):
        filing = _filing_json(folder)
        head = _FILED_HEAD.pack(FILED_VERSION, millis, len(filing)) + filing
    else:
        name = folder.encode("utf-8")
        head = _PAYLOAD_HEAD.pack(PAYLOAD_VERSION, millis, len(name)) + name
    pieces = list(raw) if isinstance(raw, (list, tuple)) else [cast("Buffer", raw)]
    return seal_stream(public_key, [head, *pieces], _context(mailbox_id))


def open_message(private_key: bytes, mailbox_id: str, sealed: bytes) -> tuple[datetime, Filing, bytes]:
    """Unseal a spool record: (received at, where it is filed, raw message). Raises ``SealError``."""
    payload = open_sealed(private_key, sealed, context=_context(mailbox_id))
    version = payload[0] if payload else 0
    if version == PAYLOAD_VERSION:
        _, millis, length = _PAYLOAD_HEAD.unpack_from(payload)
        start = _PAYLOAD_HEAD.size
        folder = payload[start : start + length].decode("utf-8", "replace")
        filing = Filing((Placement(folder),))
    elif version == FILED_VERSION:
        _, millis, length = _FILED_HEAD.unpack_from(payload)
        start = _FILED_HEAD.size
        filing = _filing_from_json(payload[start : start + length])
    else:
        raise SealError(f"unknown spool payload version {version}")
    when = datetime.fromtimestamp(millis / 1000, UTC)
    return when, filing, payload[start + length :]


def _filing_json(filing: Filing) -> bytes:
    copies = [[p.folder, list(p.flags), p.create] for p in filing.copies]
    return json.dumps({"copies": copies, "fallback": filing.fallback}, ensure_ascii=False).encode("utf-8")


def _filing_from_json(data: bytes) -> Filing:
    try:
        found = json.loads(data)
        copies = tuple(
            Placement(str(folder), tuple(str(f) for f in flags), bool(create))
            for folder, flags, create in found["copies"]
        )
        return Filing(copies, str(found["fallback"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise SealError(f"unreadable filing in a spool record: {exc}") from None


def _context(mailbox_id: str) -> bytes:
    return f"sealmail spool {mailbox_id}".encode()
