"""A backup run by root (the timer's unit) leaves nothing in the data directory that the services'
user could not open: SQLite's -wal/-shm files and the backup's own files go to the directory's owner."""

from __future__ import annotations

import os

import pytest

from sealmail.backup.run import _give_back

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def test_files_root_made_go_to_the_data_directory_owner(tmp_path) -> None:
    data = tmp_path / "data"
    (data / "spool").mkdir(parents=True)
    os.chown(data, 65534, 65534)
    made_by_root = [data / "config.sqlite-shm", data / "spool" / "x.sqlite-wal", data / "backup.key"]
    for path in made_by_root:
        path.write_bytes(b"x")
    theirs = data / "mailbox.sqlite"
    theirs.write_bytes(b"y")
    os.chown(theirs, 12345, 12345)  # someone else's file stays theirs
    _give_back(data)
    assert all(p.stat().st_uid == 65534 for p in made_by_root)
    assert theirs.stat().st_uid == 12345
