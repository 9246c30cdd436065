"""Snapshots for backup: VACUUM INTO, still encrypted with the same key, verified and hashed."""

from __future__ import annotations

import hashlib
import os

import pytest

from sealmail.store.db import open_encrypted
from sealmail.store.errors import MailboxLocked
from sealmail.store.mailbox import Mailbox

from mailgen import message


def test_snapshot_is_encrypted_verified_and_reports_changes(tmp_path) -> None:
    key = os.urandom(32)
    box = Mailbox("s" * 24, tmp_path / "box.sqlite", key)
    try:
        box.append("INBOX", message(1, subject="Snapshot-Secret-Subject"))
        dest = tmp_path / "snapshots" / "box.sqlite"
        first = box.snapshot(dest)
        assert first.changed
        content = dest.read_bytes()
        assert first.sha256 == hashlib.sha256(content).hexdigest()
        assert b"SQLite format 3" not in content
        assert b"Snapshot-Secret-Subject" not in content
        copy = open_encrypted(dest, key)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        copy.close()
        with pytest.raises(MailboxLocked):
            open_encrypted(dest, os.urandom(32))

        unchanged = box.snapshot(dest)
        assert not unchanged.changed
        assert unchanged.sha256 == first.sha256

        box.append("INBOX", message(2))
        changed = box.snapshot(dest)
        assert changed.changed
        assert changed.sha256 != first.sha256
    finally:
        box.close()
