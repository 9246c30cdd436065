"""The maintenance part of a mailbox: integrity check and verified snapshots (what backups copy)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sealmail.store.db import open_encrypted
from sealmail.store.mailboxdb import MailboxDB, as_int


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    path: Path
    sha256: str
    size: int
    changed: bool  # differs from the previous snapshot at the same path


class Maintenance:
    def __init__(self, db: MailboxDB) -> None:
        self._db = db

    def integrity_check(self) -> str:
        with self._db.read() as db:
            result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
            return result

    def snapshot(self, dest: Path) -> SnapshotInfo:
        """VACUUM INTO ``dest``: a compact copy encrypted with the same key, verified and hashed.

        SQLCipher writes fresh random IVs, so two snapshots of the same data never hash alike; the
        mailbox's write generation tells instead whether anything changed since the snapshot at
        ``dest`` (then it is kept as it is and reported unchanged).
        """
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = dest.with_name(dest.name + ".json")
        previous = json.loads(marker.read_text()) if marker.exists() else {}
        generation = as_int(self._db.meta_read("generation", 0))
        if previous.get("generation") == generation and dest.exists() and _sha256_file(dest) == previous.get("sha256"):
            return SnapshotInfo(dest, previous["sha256"], dest.stat().st_size, changed=False)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)
        with self._db.read() as db:
            db.execute("VACUUM INTO ?", (str(tmp),))
        check = open_encrypted(tmp, self._db.key)
        try:
            result = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        if result != "ok":
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"snapshot failed its integrity check: {result}")
        digest = _sha256_file(tmp)
        os.replace(tmp, dest)
        marker.write_text(json.dumps({"generation": generation, "sha256": digest}) + "\n")
        return SnapshotInfo(dest, digest, dest.stat().st_size, changed=previous.get("sha256") != digest)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
