"""The open mailbox file: one SQLCipher connection, its locks and its write transactions.

Every part of a mailbox (folders, messages, sections, DAV items, maintenance) receives the same
``MailboxDB``. Writers take an exclusive ``flock`` on the mailbox's lock file for the whole
transaction: one writer per mailbox across processes, released by the kernel if the holder dies.
Readers use WAL snapshots and never wait for the writer. A write's change events are collected
while it runs and handed to ``notify`` after COMMIT, outside the locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import sqlcipher3

from sealmail.store import events as ev
from sealmail.store.db import open_encrypted
from sealmail.store.errors import QuotaExceeded
from sealmail.store.indexing import sent_day_of_header
from sealmail.store.schema import migrate
from sealmail.store.search import header_contains

# open_encrypted is looked up here at each open: bench/store.py swaps in a plain-SQLite variant.
__all__ = ["Events", "MailboxDB", "Notify", "Row", "as_int", "chunks", "open_encrypted"]

Notify = Callable[[list[ev.ChangeEvent]], None]
Events = list[ev.ChangeEvent]
# What SQLite hands back for one row (sqlcipher3 is untyped: rows are plain tuples).
Row = tuple[object, ...]
T = TypeVar("T")


class MailboxDB:
    """One open mailbox file; thread-safe (an ``RLock`` guards the connection)."""

    def __init__(
        self, mailbox_id: str, path: Path, key: bytes, *, quota: int | None = None, notify: Notify | None = None
    ) -> None:
        self.mailbox_id = mailbox_id
        self.path = path
        self.quota = quota  # octets; None: unlimited (changed by the shared handle on each open)
        self.notify = notify
        self.key = key  # process memory only, for the life of this handle (snapshots reopen with it)
        self._lock = threading.RLock()
        self._tx_events: Events | None = None  # set while this handle's write is open
        self._tx_depth = 0
        self.commits = 0  # write transactions committed through this handle
        self._checkpointed = 0  # ``commits`` at the last ``checkpoint``
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        # FULL: every commit's log is fsynced before the commit returns. An APPEND's OK says the message
        # is there (RFC 9051 §6.3.12), and the drain deletes the spool's fsynced copy right after the
        # mailbox commit: with NORMAL a power cut could keep that deletion and lose the append.
        self.conn: sqlcipher3.Connection = open_encrypted(path, key, synchronous="FULL")
        self.conn.create_function("header_contains", 3, header_contains, deterministic=True)
        self.conn.create_function("sent_day_of", 1, sent_day_of_header, deterministic=True)  # migrations
        with self.writer_lock():
            migrate(self.conn)

    def close(self) -> None:
        # The checkpoint rewrites the database file: like every write, under the writer lock, so a
        # backup copying the files under that lock always sees one consistent state.
        with self.writer_lock():
            with contextlib.suppress(sqlcipher3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
        os.close(self._lock_fd)

    # ---- checkpoints ------------------------------------------------------------------------------
    def defer_checkpoints(self, bound_pages: int = 8192) -> None:
        """Commits stop copying the WAL into the database every 1,000 pages (SQLite's default), a
        stall of the one commit that crosses the mark: the owner calls ``checkpoint`` between
        requests instead. Past ``bound_pages`` a commit still does it, should the owner fall behind."""
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {bound_pages}")

    def checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database (PASSIVE: never waits for readers).

        Under the writer lock, as every write: a backup copying the files under that lock sees one
        consistent state (``backup.snapshot``)."""
        with self.writer_lock():
            if self.commits == self._checkpointed:
                return
            with contextlib.suppress(sqlcipher3.OperationalError):  # busy: the next one does it
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._checkpointed = self.commits

    # ---- locks and transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """This process's lock and the cross-process ``flock``, without a transaction."""
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def write(self) -> Iterator[Events]:
        """One write transaction; its events are delivered after COMMIT, outside the locks.

        Inside an open write of the same thread (a DAV request holds one around its check-then-write),
        a nested ``write`` is a savepoint: its failure undoes only its own part, and its events wait
        for the outer COMMIT.
        """
        with self._lock:
            if self._tx_events is not None:
                yield from self._nested_write(self._tx_events)
                return
        events: Events = []
        with self.writer_lock():
            self.conn.execute("BEGIN IMMEDIATE")
            self._tx_events = events
            try:
                yield events
                self.bump_generation()
                self.conn.execute("COMMIT")
                self.commits += 1
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                self._tx_events = None
        if events and self.notify is not None:
            self.notify(events)

    def _nested_write(self, events: Events) -> Iterator[Events]:
        self._tx_depth += 1
        name = f"nested_{self._tx_depth}"
        mark = len(events)
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield events
            self.conn.execute(f"RELEASE {name}")
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            del events[mark:]
            raise
        finally:
            self._tx_depth -= 1

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlcipher3.Connection]:
        with self._lock:
            yield self.conn

    def bump_generation(self) -> None:
        # Counts committed writes: an unchanged generation means an unchanged mailbox (snapshots).
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

    # ---- small typed queries ------------------------------------------------------------------------
    def row(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        found: Row | None = self.conn.execute(sql, params).fetchone()
        return found

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        found: list[Row] = self.conn.execute(sql, params).fetchall()
        return found

    def scalar_int(self, sql: str, params: Sequence[object] = ()) -> int:
        """The first column of the one row ``sql`` returns (aggregates: never NULL here)."""
        found = self.row(sql, params)
        assert found is not None
        return as_int(found[0])

    def exists(self, sql: str, params: Sequence[object] = ()) -> bool:
        return self.row(sql, params) is not None

    # ---- meta values and quota --------------------------------------------------------------------
    def meta(self, key: str, default: object = None) -> object:
        found = self.row("SELECT value FROM meta WHERE key = ?", (key,))
        return found[0] if found else default

    def set_meta(self, key: str, value: object) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta_read(self, key: str, default: object) -> object:
        with self.read():
            return self.meta(key, default)

    def used_octets(self) -> int:
        """Messages and DAV items, in octets (kept by the schema's triggers: one row, however large)."""
        return as_int(self.meta("used_octets", 0))

    def check_quota(self, extra: int) -> None:
        if self.quota is None:
            return
        used = self.used_octets()
        if used + extra > self.quota:
            raise QuotaExceeded(f"mailbox is over its quota ({used + extra} of {self.quota} octets)")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Pieces short enough for one ``IN (...)`` list."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def as_int(value: object) -> int:
    """An INTEGER column or meta value (meta values are stored as given: int or numeric text)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str | bytes | float):
        return int(value)
    raise TypeError(f"not an integer: {value!r}")
