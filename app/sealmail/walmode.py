"""Switching a SQLite-family database to WAL when several processes open it at the same moment.

``PRAGMA journal_mode = WAL`` needs the file to itself for an instant. When two connections both
hold a read lock and want more, SQLite answers "database is locked" at once instead of waiting in
the busy handler (waiting could deadlock), so components starting together, or two MX processes
creating a queue, could fail at start. The switch is retried for a while; once a file is in WAL
mode it stays so, and the pragma costs nothing.
"""

from __future__ import annotations

import time
from typing import Any


def enable_wal(db: Any, timeout: float = 10.0) -> None:
    """``PRAGMA journal_mode = WAL`` on ``db`` (sqlite3 or sqlcipher3), retried while the file is busy."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except Exception as exc:  # sqlite3 and sqlcipher3 each have their own OperationalError
            busy = type(exc).__name__ == "OperationalError" and "locked" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
