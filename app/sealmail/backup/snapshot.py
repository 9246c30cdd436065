"""A consistent copy of everything a host needs, staged in one directory before upload.

Names say where a file goes back: ``data/<path>`` under the data directory (wherever it is at
restore time), ``file:<absolute path>`` for files kept elsewhere (env file, TLS certificate), and
``mongodb:<database>`` for the MongoDB config store (``backup.mongodb``: a mongodump archive, kept
in memory only, never staged on disk).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.backup import mongodb
from sealmail.backup.errors import BackupError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sealmail.settings import Settings

STAGING = "backup-staging"
# Never backed up: live run files, our own staging and restore areas, SQLite's side files.
_SKIP_DIRS = {"run", STAGING}
_SKIP_PREFIXES = ("pre-restore-", ".restore-")
_SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


@dataclass(frozen=True, slots=True)
class Item:
    name: str  # where it goes back (see the module docstring)
    staged: Path | None  # the copy to upload (None: the content is in ``content``)
    secret: bool  # sealed to the operator key before upload
    content: bytes | None = None  # in memory only (the MongoDB archive: never in clear on disk)

    def read(self) -> bytes:
        if self.content is not None:
            return self.content
        assert self.staged is not None
        return self.staged.read_bytes()

    @property
    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        assert self.staged is not None
        return self.staged.stat().st_size


def collect(settings: Settings, env_file: Path | None, staging: Path) -> list[Item]:
    data = settings.data_dir.resolve()
    items: list[Item] = []
    if settings.config_backend == "mongodb":
        # The shared config store, from whichever host runs this (every host's backup holds it).
        items.append(Item(mongodb.entry_name(settings.mongodb_database), None, True, mongodb.dump(settings)))
    counter = iter(range(1_000_000))

    def stage() -> Path:
        return staging / f"{next(counter):06d}"

    for path in _walk(data):
        rel = path.relative_to(data).as_posix()
        name = f"data/{rel}"
        if rel.startswith("mailboxes/") and path.suffix == ".sqlite":
            items += _mailbox(path, name, stage)
        elif path.suffix == ".sqlite":
            target = stage()
            _sqlite_copy(path, target)
            items.append(Item(name, target, secret=not rel.startswith("spool/")))
        else:
            target = stage()
            shutil.copyfile(path, target)
            items.append(Item(name, target, secret=True))

    outside: list[Path | None] = [env_file, settings.tls_cert_file, settings.tls_key_file]
    dkim = settings.dkim_path.resolve()
    if dkim.exists() and not dkim.is_relative_to(data):
        outside += list(_walk(dkim))
    for extra in outside:
        if extra is None or not extra.is_file() or extra.resolve().is_relative_to(data):
            continue
        target = stage()
        shutil.copyfile(extra, target)
        items.append(Item(f"file:{extra.resolve()}", target, secret=True))
    return items


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not (here == root and d in _SKIP_DIRS) and not d.startswith(_SKIP_PREFIXES) and not d.startswith(".")
        )
        for filename in sorted(filenames):
            if filename.startswith(".") or filename.endswith(_SKIP_SUFFIXES):
                continue
            path = here / filename
            if path.is_file() and not path.is_symlink():
                yield path


def _mailbox(path: Path, name: str, stage: Callable[[], Path]) -> list[Item]:
    """The SQLCipher file and its WAL, copied under the mailbox's writer lock (one consistent state).

    Without the key the server cannot checkpoint or read the database; it does not need to: every
    writer and every checkpoint holds this ``flock``, so while we hold it neither file changes.
    """
    wal = path.with_name(path.name + "-wal")
    db_copy, wal_copy = stage(), stage()
    fd = open_lock(path.with_suffix(".lock"), path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            shutil.copyfile(path, db_copy)
            has_wal = wal.exists() and wal.stat().st_size > 0
            if has_wal:
                shutil.copyfile(wal, wal_copy)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    items = [Item(name, db_copy, secret=False)]
    if has_wal:
        items.append(Item(name + "-wal", wal_copy, secret=False))
    return items


def open_lock(lock: Path, owned_like: Path) -> int:
    """Open (or make) the lock file ``lock`` beside ``owned_like`` without being led elsewhere.

    The backup runs as root in directories the services' user owns, and that user may plant
    anything at the lock's path. So: the directory is opened without following a symlink, the lock
    with ``O_NOFOLLOW`` (a symlink is refused, never followed or created through), and what is
    opened must be a regular file with one link, owned by ``owned_like``'s owner. Only a lock made
    here, just now, is given to that owner (``fchown``): an existing file is never chowned.
    Raises ``BackupError`` when anything else is found.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a planted FIFO cannot hang us
    try:
        dir_fd = os.open(lock.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BackupError(f"cannot open the lock's directory {lock.parent}: {exc.strerror}") from exc
    try:
        owner = os.stat(owned_like.name, dir_fd=dir_fd, follow_symlinks=False)
        try:
            fd, made = os.open(lock.name, flags, dir_fd=dir_fd), False
        except FileNotFoundError:
            fd, made = os.open(lock.name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd), True
    except FileExistsError as exc:  # appeared between the two opens: someone is playing games
        raise BackupError(f"refusing the lock {lock}: it appeared while it was being made") from exc
    except OSError as exc:  # ELOOP: a symbolic link
        raise BackupError(f"refusing the lock {lock}: {exc.strerror} (a symbolic link?)") from exc
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise BackupError(f"refusing the lock {lock}: not a regular file with a single link")
        if made:
            if st.st_uid != owner.st_uid:
                with contextlib.suppress(PermissionError):  # made as root: it belongs to the mailbox's owner
                    os.fchown(fd, owner.st_uid, owner.st_gid)
        elif st.st_uid != owner.st_uid:
            raise BackupError(f"refusing the lock {lock}: owned by uid {st.st_uid}, not the mailbox's owner")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sqlite_copy(path: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the owners keep writing."""
    try:
        with (
            contextlib.closing(sqlite3.connect(path, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {path.name}: {exc}") from exc
