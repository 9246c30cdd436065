"""A mailbox written by the previous schema version opens with the newest one, and what the new
migration computes for stored mail is there (the upgrade runs inside the encrypted file)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from sealmail.store.db import open_encrypted
from sealmail.store.mailbox import Mailbox
from sealmail.store.schema import MIGRATIONS
from sealmail.store.search import DateKey

# What the migration that added sent_day adds, undone to rebuild a mailbox of the version before it
# (the later migrations create only what does not exist, so they run again harmlessly).
_SENT_DAY_MIGRATION = next(i for i, script in enumerate(MIGRATIONS) if "ADD COLUMN sent_day" in script)
_UNDO_SENT_DAY = (
    "ALTER TABLE bodies DROP COLUMN sent_day",
    "DROP TABLE lost_subscriptions",
    "DROP INDEX folders_by_object_id",
    "ALTER TABLE folders DROP COLUMN object_id",
    "DROP INDEX bodies_by_object_id",
    "ALTER TABLE bodies DROP COLUMN object_id",
    "DROP TABLE body_previews",
)


def _downgrade(path: Path, key: bytes) -> None:
    db = open_encrypted(path, key)
    try:
        for statement in _UNDO_SENT_DAY:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {_SENT_DAY_MIGRATION}")
    finally:
        db.close()


def test_upgrade_fills_the_sent_day_of_stored_mail(tmp_path: Path) -> None:
    """RFC 9051 §6.4.4 SENTON needs the Date: header's date as written: mail stored before the column
    existed gets it from its stored header block during the upgrade."""
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    box = Mailbox("f" * 24, path, key)
    box.append("INBOX", b"Date: Sun, 25 Mar 2007 00:30:00 +0200\r\nSubject: a\r\n\r\nx\r\n")
    box.append("INBOX", b"Subject: no date\r\n\r\nx\r\n")
    box.close()
    _downgrade(path, key)

    box = Mailbox("f" * 24, path, key)
    try:
        assert box.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert box.search("INBOX", DateKey("sent", "on", date(2007, 3, 25))) == [1]
        assert box.search("INBOX", DateKey("sent", "before", date(2007, 3, 25))) == []
    finally:
        box.close()


def test_upgrade_gives_object_ids_that_then_stay(tmp_path: Path) -> None:
    """RFC 8474: every folder gets a MAILBOXID and every stored message an EMAILID, distinct, random
    (§9), and the same each time the file is opened afterwards."""
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    box = Mailbox("f" * 24, path, key)
    box.append("INBOX", b"Subject: a\r\n\r\nx\r\n")
    box.append("INBOX", b"Subject: b\r\n\r\nx\r\n")
    box.close()
    _downgrade(path, key)

    box = Mailbox("f" * 24, path, key)
    folders = {f.name: f.object_id for f in box.list_folders()}
    bodies = box.email_ids(info.body_id for info in box.messages("INBOX"))
    box.close()
    assert all(v.startswith("F") and len(v) == 25 for v in folders.values())
    assert len(set(folders.values())) == len(folders)
    assert len(set(bodies.values())) == 2
    assert all(v.startswith("M") for v in bodies.values())

    box = Mailbox("f" * 24, path, key)
    try:
        assert {f.name: f.object_id for f in box.list_folders()} == folders
        assert box.email_ids(bodies) == bodies
    finally:
        box.close()
