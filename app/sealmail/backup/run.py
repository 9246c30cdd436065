"""``sealmail backup run``, ``list`` and ``verify``."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.backup import keys
from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import (
    Entry,
    Manifest,
    is_run_id,
    new_run_id,
    open_manifest,
    read_unverified,
    runs_to_keep,
    seal_manifest,
)
from sealmail.backup.s3 import Bucket
from sealmail.backup.snapshot import STAGING, Item, collect
from sealmail.keyfiles import secret_file

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sealmail.settings import Settings


@dataclass(slots=True)
class RunReport:
    run: str
    files: int
    uploaded: list[str]
    octets_uploaded: int
    deleted_runs: list[str]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _content_id(item: Item, hmac_key: bytes) -> str:
    """SHA-256 of a file; for a secret, an HMAC keyed by the host (a bare hash of a small secret
    in a manifest anyone with bucket access reads could confirm a guess)."""
    if not item.secret:
        assert item.staged is not None  # only secrets are kept in memory
        return file_sha256(item.staged)
    return "hmac-" + hmac.new(hmac_key, item.read(), hashlib.sha256).hexdigest()


@contextlib.contextmanager
def _one_run_at_a_time(data_dir: Path) -> Iterator[None]:
    # The data directory is the services' user's: a symlink planted there is refused, not followed.
    lock = data_dir / "backup.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise BackupError(f"refusing the lock {lock}: {exc.strerror} (a symbolic link?)") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BackupError(f"refusing the lock {lock}: not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError("another backup is running") from exc
        yield
    finally:
        os.close(fd)


def latest_run(bucket: Bucket) -> str | None:
    runs = list_runs(bucket)
    return runs[-1] if runs else None


def list_runs(bucket: Bucket) -> list[str]:
    """Run ids in the bucket; keys that are not ``runs/<run id>.json`` are none of ours and ignored."""
    prefix = bucket.key("runs", "")
    names = (k[len(prefix) : -len(".json")] for k in bucket.keys(prefix) if k.endswith(".json"))
    return sorted(n for n in names if is_run_id(n))


def load_manifest(bucket: Bucket, run: str | None, manifest_key: bytes) -> Manifest:
    """The manifest of ``run`` (default: the latest), only if its MAC verifies (see ``manifest``)."""
    run = run or latest_run(bucket)
    if run is None:
        raise BackupError(f"no backups under {bucket.name}/{bucket.prefix}")
    if not is_run_id(run):
        raise BackupError(f"{run!r} is not a run id (see `sealmail backup list`)")
    return open_manifest(bucket.get(bucket.key("runs", f"{run}.json")), manifest_key, bucket.prefix, run)


def _previous(bucket: Bucket, manifest_key: bytes) -> Manifest | None:
    """The latest manifest, if it is authentic: entries are reused from it (and so signed again by
    this run), so one that does not verify — older format, or changed in the bucket — is ignored
    and every file is uploaded afresh."""
    if latest_run(bucket) is None:
        return None
    try:
        return load_manifest(bucket, None, manifest_key)
    except BackupError:
        return None


def run_backup(settings: Settings, env_file: Path | None) -> RunReport:
    public = keys.public_key(settings.backup_public_key)
    manifest_key = keys.manifest_key(
        settings.backup_manifest_key.get_secret_value() if settings.backup_manifest_key else None
    )
    with Bucket(settings) as bucket:
        return _run_backup(settings, env_file, bucket, public, manifest_key)


def _run_backup(
    settings: Settings, env_file: Path | None, bucket: Bucket, public: bytes, manifest_key: bytes
) -> RunReport:
    bucket.check()
    data_dir = settings.data_dir
    with _one_run_at_a_time(data_dir):
        previous = _previous(bucket, manifest_key)
        before = {e.name: e for e in previous.entries} if previous else {}
        present = bucket.objects(bucket.key("objects", ""))
        hmac_key = secret_file(data_dir / "backup.key")
        staging = data_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        run = new_run_id()
        try:
            entries, uploaded, octets = [], [], 0
            for item in collect(settings, env_file, staging):
                content_id = _content_id(item, hmac_key)
                old = before.get(item.name)
                if (
                    old is not None
                    and old.id == content_id
                    and old.secret == item.secret
                    and present.get(old.object) == (old.stored_size, old.etag)
                ):
                    entries.append(old)  # unchanged since the last run, and its object is intact
                    continue
                size = item.size
                if item.secret:
                    blob = keys.seal_secret(public, item.name, item.read())
                    stored_sha, stored_size = hashlib.sha256(blob).hexdigest(), len(blob)
                    key = bucket.key("objects", stored_sha)
                    etag = bucket.put(key, blob)
                else:
                    assert item.staged is not None
                    stored_sha, stored_size = file_sha256(item.staged), size
                    key = bucket.key("objects", stored_sha)
                    etag = bucket.put_file(key, item.staged)
                entries.append(Entry(item.name, item.secret, content_id, size, key, stored_sha, stored_size, etag))
                uploaded.append(item.name)
                octets += stored_size
            manifest = Manifest(run=run, host=settings.mail_hostname, entries=entries, uploaded=uploaded)
            # Written last: a run that failed before this point names nothing, and changes nothing.
            bucket.put(bucket.key("runs", f"{run}.json"), seal_manifest(manifest, manifest_key, bucket.prefix))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            _give_back(data_dir)
        deleted = _apply_retention(bucket, settings)
    return RunReport(run, len(entries), uploaded, octets, deleted)


def _give_back(data_dir: Path) -> None:
    """Run as root (the timer's unit), a backup may create files in the data directory: its own
    key and lock, and SQLite's -wal/-shm beside a database nobody had open. They go to the data
    directory's owner, or the services (another user) could not open them afterwards."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    for dirpath, _, filenames in os.walk(data_dir):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_uid == 0 and owner.st_uid != 0:
                    os.lchown(path, owner.st_uid, owner.st_gid)


def _apply_retention(bucket: Bucket, settings: Settings) -> list[str]:
    runs = list_runs(bucket)
    keep = runs_to_keep(runs, settings.backup_keep_daily, settings.backup_keep_weekly, settings.backup_keep_monthly)
    old = [r for r in runs if r not in keep]
    if old:
        bucket.delete([bucket.key("runs", f"{r}.json") for r in old])
    # Unverified on purpose: this only decides which objects stay, and keeping one too many is harmless.
    wanted = {
        e.object for r in sorted(keep) for e in read_unverified(bucket.get(bucket.key("runs", f"{r}.json"))).entries
    }
    orphans = [k for k in bucket.keys(bucket.key("objects", "")) if k not in wanted]
    if orphans:
        bucket.delete(orphans)
    return old


@dataclass(slots=True)
class Problem:
    name: str
    object: str
    reason: str


def verify(settings: Settings, run: str | None) -> tuple[Manifest, list[Problem]]:
    """Check the run's manifest MAC, then download every object and check its size and SHA-256."""
    manifest_key = keys.manifest_key(
        settings.backup_manifest_key.get_secret_value() if settings.backup_manifest_key else None
    )
    with Bucket(settings) as bucket:
        bucket.check()
        manifest = load_manifest(bucket, run, manifest_key)
        problems = []
        for entry in manifest.entries:
            try:
                data = bucket.get(entry.object)
            except BackupError as exc:
                problems.append(Problem(entry.name, entry.object, str(exc)))
                continue
            if len(data) != entry.stored_size:
                problems.append(Problem(entry.name, entry.object, f"{len(data)} octets, {entry.stored_size} expected"))
            elif hashlib.sha256(data).hexdigest() != entry.stored_sha256:
                problems.append(Problem(entry.name, entry.object, "SHA-256 does not match the manifest"))
    return manifest, problems
