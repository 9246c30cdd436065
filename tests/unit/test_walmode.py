"""Switching to WAL while another process reads the file (components starting together)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sealmail.walmode import enable_wal


def _busy(tmp_path) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """A rollback-journal file with a reader holding its shared lock, and a second connection to it."""
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);").close()
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # a shared lock, kept until COMMIT
    return reader, sqlite3.connect(path, isolation_level=None, timeout=0.01)


def test_the_switch_waits_for_a_reader_and_then_succeeds(tmp_path) -> None:
    reader, db = _busy(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db.execute("PRAGMA journal_mode = WAL")  # what a plain switch does meanwhile
    threading.Timer(0.2, reader.execute, args=("COMMIT",)).start()
    enable_wal(db)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    reader.close()


def test_a_file_that_stays_busy_gives_up_with_the_error(tmp_path) -> None:
    reader, db = _busy(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(db, timeout=0.2)
    db.close()
    reader.close()
