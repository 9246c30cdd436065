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


def _data_with_a_mailbox(tmp_path, owner: int = 12345):
    from sealmail.settings import Settings

    data = tmp_path / "data"
    boxes = data / "mailboxes"
    boxes.mkdir(parents=True)
    box = boxes / "0123456789abcdef01234567.sqlite"
    box.write_bytes(b"encrypted pages")
    for path in (data, boxes, box):
        os.chown(path, owner, owner)
    return Settings(data_dir=data), box


@pytest.mark.parametrize("target_exists", [True, False], ids=["existing-file", "dangling"])
def test_a_symlink_planted_at_the_mailbox_lock_is_refused_and_its_target_untouched(tmp_path, target_exists) -> None:
    """The mailbox's owner (the services' user) controls the mailboxes directory; the backup runs as
    root. A symlink at ``<mailbox>.lock`` must not make root open, create or chown another file."""
    from sealmail.backup.errors import BackupError
    from sealmail.backup.snapshot import collect

    settings, box = _data_with_a_mailbox(tmp_path)
    victim = tmp_path / "victim"
    if target_exists:
        victim.write_bytes(b"root's file")
        victim.chmod(0o600)
    box.with_suffix(".lock").symlink_to(victim)
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(BackupError, match="lock"):
        collect(settings, None, staging)
    if target_exists:
        assert victim.stat().st_uid == 0
        assert victim.read_bytes() == b"root's file"
    else:
        assert not victim.exists()


def test_a_hard_link_or_foreign_file_at_the_mailbox_lock_is_not_chowned(tmp_path) -> None:
    """A regular file at the lock path that is not the mailbox owner's lock (a hard link to a root
    file, or a file of a third user) is refused before any fchown."""
    from sealmail.backup.errors import BackupError
    from sealmail.backup.snapshot import collect

    settings, box = _data_with_a_mailbox(tmp_path)
    victim = settings.data_dir / "root-secret"
    victim.write_bytes(b"root's file")
    os.link(victim, box.with_suffix(".lock"))
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(BackupError, match="lock"):
        collect(settings, None, staging)
    assert victim.stat().st_uid == 0


def test_the_mailbox_lock_a_root_backup_creates_goes_to_the_mailbox_owner(tmp_path) -> None:
    from sealmail.backup.snapshot import collect

    settings, box = _data_with_a_mailbox(tmp_path)
    staging = tmp_path / "staging"
    staging.mkdir()
    items = collect(settings, None, staging)
    assert [i.name for i in items] == ["data/mailboxes/0123456789abcdef01234567.sqlite"]
    lock = box.with_suffix(".lock")
    assert lock.stat().st_uid == 12345
    collect(settings, None, staging)  # the second run opens the owner's lock as it is


def test_a_symlink_planted_at_the_backup_run_lock_is_refused(tmp_path) -> None:
    from sealmail.backup.errors import BackupError
    from sealmail.backup.run import _one_run_at_a_time

    settings, _ = _data_with_a_mailbox(tmp_path)
    victim = tmp_path / "made-by-root"
    (settings.data_dir / "backup.lock").symlink_to(victim)
    with pytest.raises(BackupError, match="lock"), _one_run_at_a_time(settings.data_dir):
        pass
    assert not victim.exists()
