"""``sealmail backup restore``: a host back from a run, all or nothing.

Every object is downloaded, checked against the manifest and (secrets) opened with the operator
key into a staging directory first; only when all of it is good does anything in place change.
Files that would be replaced are moved aside into ``<data>/pre-restore-<time>/``, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.backup import keys
from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import Manifest
from sealmail.backup.run import load_manifest
from sealmail.backup.s3 import Bucket

if TYPE_CHECKING:
    from sealmail.settings import Settings


@dataclass(slots=True)
class RestoreReport:
    run: str
    files: int
    moved_aside: list[str] = field(default_factory=list)
    aside_dir: Path | None = None


def destination(name: str, data_dir: Path) -> Path:
    if name.startswith("data/"):
        rel = Path(name[len("data/") :])
        if rel.is_absolute() or ".." in rel.parts:
            raise BackupError(f"refusing a path outside the data directory: {name}")
        return data_dir / rel
    if name.startswith("file:/"):
        return Path(name[len("file:") :])
    raise BackupError(f"unknown entry in the manifest: {name}")


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


def restore(settings: Settings, run: str | None, key_file: Path, *, yes: bool) -> RestoreReport:
    private = keys.read_private_key(key_file)
    bucket = Bucket(settings)
    bucket.check()
    manifest = load_manifest(bucket, run)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    staging = data_dir / f".restore-{manifest.run}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        staged = _stage(bucket, manifest, private, data_dir, staging)
        # Checked after everything is staged and good: a file that already holds the backed-up
        # bytes (the env file given to this very command, say) is no conflict.
        busy = running_components(data_dir)
        conflicts = [p for c, p, _ in staged if p.exists() and p.read_bytes() != c.read_bytes()]
        if (busy or conflicts) and not yes:
            what = (
                f"components are running ({', '.join(busy)})" if busy else f"{len(conflicts)} files would be replaced"
            )
            raise BackupError(f"{what}: pass --yes to restore anyway (replaced files are moved aside, not deleted)")
        report = RestoreReport(manifest.run, len(staged))
        aside = data_dir / f"pre-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        targets = {path for _, path, _ in staged}
        for copy, path, secret in staged:
            _place(copy, path, secret, data_dir, aside, targets, report)
        if report.moved_aside:
            report.aside_dir = aside
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage(
    bucket: Bucket, manifest: Manifest, private: bytes, data_dir: Path, staging: Path
) -> list[tuple[Path, Path, bool]]:
    """Every object downloaded, checked against the manifest and opened, into ``staging``."""
    staged = []
    for index, entry in enumerate(manifest.entries):
        path = destination(entry.name, data_dir)
        data = bucket.get(entry.object)
        if len(data) != entry.stored_size or hashlib.sha256(data).hexdigest() != entry.stored_sha256:
            raise BackupError(f"{entry.name}: the object {entry.object} is damaged (size or SHA-256 differs)")
        if entry.secret:
            data = keys.open_secret(private, entry.name, data)
        copy = staging / f"{index:06d}"
        with copy.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        staged.append((copy, path, entry.secret))
    return staged


def _place(
    copy: Path, path: Path, secret: bool, data_dir: Path, aside: Path, targets: set[Path], report: RestoreReport
) -> None:
    before = path.stat() if path.exists() else None
    if before is not None and path.read_bytes() != copy.read_bytes():
        _move_aside(path, data_dir, aside, report)
    # A restored database must not meet a WAL or shared-memory file of another state (a WAL that
    # is itself in the backup is placed by its own entry).
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if side.exists() and side not in targets:
            _move_aside(side, data_dir, aside, report)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.replace(copy, path)
    inside = path.is_relative_to(data_dir)
    if before is not None and not inside:
        # A file the host already has (the TLS key the components' group reads, say) keeps its
        # owner and mode.
        os.chmod(path, before.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(path, before.st_uid, before.st_gid)
        return
    os.chmod(path, 0o600 if secret or inside else 0o644)
    if inside and os.geteuid() == 0:
        owner = data_dir.stat()
        os.chown(path, owner.st_uid, owner.st_gid)


def _move_aside(path: Path, data_dir: Path, aside: Path, report: RestoreReport) -> None:
    rel = path.relative_to(data_dir) if path.is_relative_to(data_dir) else Path("files", *path.parts[1:])
    target = aside / rel
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.move(path, target)
    report.moved_aside.append(str(rel))
