"""``sealmail backup restore``: a host back from a run, all or nothing.

The run's manifest is believed only once its MAC verifies with the key derived from the operator
private key given here (``manifest``'s docstring says why and how). Every object is then
downloaded, checked against the manifest and (secrets) opened with the operator key into a staging
directory first; only when all of it is good does anything in place change. Files that would be
replaced are moved aside into ``<data>/pre-restore-<time>/``, never deleted.

Restore runs as root, so even an authentic manifest only writes where a backup reads from
(``snapshot.collect``): under the data directory, under ``/etc/sealmail`` and the DKIM directory,
and the exact TLS certificate, TLS key and env file paths of this host's settings. Those roots are
resolved once (they are the operator's configuration); below them every directory is opened with
``O_NOFOLLOW`` relative to its parent, and the file itself is written as a new file in that
directory and renamed into place, so a symbolic link anywhere on the way — planted before the
restore or during it — is refused, never followed.

A run of a host whose config store is in MongoDB also holds a ``mongodb:<database>`` entry: it is
opened in memory and handed to ``mongorestore --drop`` (``backup.mongodb``) before any file is
placed. It replaces the config store every host shares, so it is restored only when asked for
(``mongodb=True``, on one host: every host's run holds a copy, each of its own moment) and always
needs ``--yes``; otherwise it is listed as skipped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.backup import keys, mongodb
from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import Entry
from sealmail.backup.run import load_manifest
from sealmail.backup.s3 import Bucket

if TYPE_CHECKING:
    from sealmail.settings import Settings

ETC_DIR = Path("/etc/sealmail")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class RestoreReport:
    run: str
    files: int
    moved_aside: list[str] = field(default_factory=list)
    aside_dir: Path | None = None
    skipped: list[str] = field(default_factory=list)  # entries left alone (the MongoDB config store)


@dataclass(frozen=True, slots=True)
class Target:
    """Where an entry goes: ``parts`` below ``root`` (a resolved directory, one of the allowed places)."""

    root: str
    parts: tuple[str, ...]

    @property
    def path(self) -> Path:
        return Path(self.root, *self.parts)


@dataclass(frozen=True, slots=True)
class Places:
    """The places a backup writes, resolved on this host: directories, and single files."""

    data: str
    dirs: tuple[str, ...]
    files: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings, env_file: Path | None) -> Places:
        data = os.path.realpath(settings.data_dir)
        dirs = (data, os.path.realpath(ETC_DIR), os.path.realpath(settings.dkim_path))
        files = tuple(
            os.path.realpath(p) for p in (settings.tls_cert_file, settings.tls_key_file, env_file) if p is not None
        )
        return cls(data, dirs, files)


def _parts(text: str, name: str) -> tuple[str, ...]:
    parts = tuple(text.split("/"))
    if not parts or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise BackupError(f"refusing {name!r}: not a plain path (empty, '.' or '..' components)")
    return parts


def destination(name: str, places: Places) -> Target:
    """The target of a manifest entry, or BackupError when it is not a place a backup writes."""
    if name.startswith("data/"):
        return Target(places.data, _parts(name[len("data/") :], name))
    if name.startswith("file:/"):
        parts = _parts(name[len("file:/") :], name)
        path = "/" + "/".join(parts)
        if path in places.files:
            return Target(os.path.dirname(path), (os.path.basename(path),))
        for root in places.dirs:
            if path.startswith(root.rstrip("/") + "/"):
                return Target(root, _parts(path[len(root.rstrip("/")) + 1 :], name))
        raise BackupError(
            f"refusing {name!r}: outside the places a backup writes (the data directory, {ETC_DIR}, the DKIM "
            "directory, and this host's TLS certificate, TLS key and env file)"
        )
    raise BackupError(f"unknown entry in the manifest: {name!r}")


def _open_dir(target: Target, *, create: bool) -> int | None:
    """A descriptor of the target's directory, every component below the root opened without
    following links; None if a component is missing and ``create`` is false."""
    try:
        fd = os.open(target.root, _DIR_FLAGS)
    except FileNotFoundError:
        if not create:
            return None
        os.makedirs(target.root, mode=0o700, exist_ok=True)
        fd = os.open(target.root, _DIR_FLAGS)
    try:
        for part in target.parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BackupError(
                f"refusing {target.path}: a symbolic link (or a file) stands where a directory should be on its way"
            ) from None
        raise BackupError(f"cannot open the directory of {target.path}: {exc.strerror}") from None
    return fd


def _existing(target: Target, dir_fd: int) -> os.stat_result | None:
    try:
        info = os.stat(target.parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise BackupError(f"refusing {target.path}: it is a symbolic link or not a regular file")
    return info


def _read(name: str, dir_fd: int) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def check_target(target: Target) -> bytes | None:
    """Refuses a target with a link on its way; its current content, if it has any. Writes nothing."""
    dir_fd = _open_dir(target, create=False)
    if dir_fd is None:
        return None
    try:
        if _existing(target, dir_fd) is None:
            return None
        return _read(target.parts[-1], dir_fd)
    finally:
        os.close(dir_fd)


def running_components(data_dir: Path) -> list[str]:
    running = []
    for marker in sorted((data_dir / "run").glob("*.json")):
        try:
            pid = int(json.loads(marker.read_text()).get("pid", 0))
            if pid > 0:
                os.kill(pid, 0)
                running.append(marker.stem)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
    return running


def restore(
    settings: Settings,
    run: str | None,
    key_file: Path,
    *,
    yes: bool,
    env_file: Path | None = None,
    mongodb_store: bool = False,
) -> RestoreReport:
    private = keys.read_private_key(key_file)
    bucket = Bucket(settings)
    bucket.check()
    manifest = load_manifest(bucket, run, keys.derive_manifest_key(private))
    places = Places.of(settings, env_file)
    files = [e for e in manifest.entries if not e.name.startswith(mongodb.PREFIX)]
    stores = [e for e in manifest.entries if e.name.startswith(mongodb.PREFIX)]
    skipped = [] if mongodb_store else [e.name for e in stores]
    stores = stores if mongodb_store else []
    if stores:
        mongodb.check_restorable(settings)
    # Every target is judged before anything is downloaded or written.
    targets = [destination(entry.name, places) for entry in files]
    current = [check_target(t) for t in targets]
    data_dir = Path(places.data)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    staging = data_dir / f".restore-{manifest.run}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        staged = _stage(bucket, files, private, targets, staging)
        archives = [(entry.name, _download(bucket, entry, private)) for entry in stores]  # in memory only
        # Checked after everything is staged and good: a file that already holds the backed-up
        # bytes (the env file given to this very command, say) is no conflict.
        busy = running_components(data_dir)
        conflicts = [
            t for (c, t, _), now in zip(staged, current, strict=True) if now is not None and now != c.read_bytes()
        ]
        if (busy or conflicts or archives) and not yes:
            what = (
                f"components are running ({', '.join(busy)})"
                if busy
                else f"{len(conflicts)} files would be replaced"
                if conflicts
                else "the shared MongoDB config store would be replaced (mongorestore --drop)"
            )
            raise BackupError(f"{what}: pass --yes to restore anyway (replaced files are moved aside, not deleted)")
        for name, archive in archives:
            mongodb.restore_archive(settings, name, archive)
        report = RestoreReport(manifest.run, len(staged) + len(archives), skipped=skipped)
        aside = data_dir / f"pre-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        names = {t for _, t, _ in staged}
        for copy, target, secret in staged:
            _place(copy, target, secret, places, aside, names, report)
        if report.moved_aside:
            report.aside_dir = aside
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(bucket: Bucket, entry: Entry, private: bytes) -> bytes:
    """One object, checked against the manifest and (secrets) opened, in memory."""
    data = bucket.get(entry.object)
    if len(data) != entry.stored_size or hashlib.sha256(data).hexdigest() != entry.stored_sha256:
        raise BackupError(f"{entry.name}: the object {entry.object} is damaged (size or SHA-256 differs)")
    if entry.secret:
        data = keys.open_secret(private, entry.name, data)
    return data


def _stage(
    bucket: Bucket, entries: list[Entry], private: bytes, targets: list[Target], staging: Path
) -> list[tuple[Path, Target, bool]]:
    """Every object downloaded, checked against the manifest and opened, into ``staging``."""
    staged = []
    for index, (entry, target) in enumerate(zip(entries, targets, strict=True)):
        data = _download(bucket, entry, private)
        copy = staging / f"{index:06d}"
        with copy.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        staged.append((copy, target, entry.secret))
    return staged


def _place(
    copy: Path, target: Target, secret: bool, places: Places, aside: Path, names: set[Target], report: RestoreReport
) -> None:
    dir_fd = _open_dir(target, create=True)
    assert dir_fd is not None
    name = target.parts[-1]
    try:
        before = _existing(target, dir_fd)
        data = copy.read_bytes()
        if before is not None and _read(name, dir_fd) != data:
            _move_aside(dir_fd, target, places, aside, report)
        # A restored database must not meet a WAL or shared-memory file of another state (a WAL that
        # is itself in the backup is placed by its own entry).
        for side_name in (name + "-wal", name + "-shm"):
            side = Target(target.root, (*target.parts[:-1], side_name))
            if side not in names and _existing(side, dir_fd) is not None:
                _move_aside(dir_fd, side, places, aside, report)
        inside = target.root == places.data
        owner: tuple[int, int] | None
        if before is not None and not inside:
            # A file the host already has (the TLS key the components' group reads, say) keeps its
            # owner and mode.
            mode, owner = before.st_mode & 0o7777, (before.st_uid, before.st_gid)
        else:
            mode = 0o600 if secret or inside else 0o644
            data_owner = os.stat(places.data)
            owner = (data_owner.st_uid, data_owner.st_gid) if inside else None
        tmp = f".{name}.restore-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                if owner is not None and os.geteuid() == 0:
                    os.fchown(fh.fileno(), *owner)
                os.fsync(fh.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        copy.unlink()
    finally:
        os.close(dir_fd)


def _move_aside(dir_fd: int, target: Target, places: Places, aside: Path, report: RestoreReport) -> None:
    path = target.path
    rel = Path(*target.parts) if target.root == places.data else Path("files", *path.parts[1:])
    dest = aside / rel
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = target.parts[-1]
    try:
        os.rename(name, dest, src_dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another file system (/etc and the data directory, say): copy, then remove.
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(src, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout)
            os.fchmod(fout.fileno(), os.fstat(fin.fileno()).st_mode & 0o7777)
        os.unlink(name, dir_fd=dir_fd)
    report.moved_aside.append(str(rel))
