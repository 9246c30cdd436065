"""A user's own copy of their mailbox's latest backup (issue 22: the self-service area, ``/v1/me``).

What the newest backup run holds for the mailbox — its SQLCipher file and WAL, byte for byte as
``backup run`` uploaded them (``backup.snapshot``: still encrypted with the mailbox key) — in one
zip archive with what opens them with the password:

* ``mailbox.sqlite`` (and ``mailbox.sqlite-wal`` when the run had one);
* ``keys.json``: the mailbox key wrapped with the password (Argon2id salt and parameters) and, if
  there is one, with the recovery key, as the config store holds them now. That is no more than a
  thief of the config store has: without the password or recovery key it opens nothing;
* ``open-mailbox.py`` (``backup.openmailbox``, a script that needs only three PyPI packages) and
  ``README.txt``, the steps in plain words.

The run's manifest must verify (its MAC, ``backup.manifest``), and each file's SHA-256 must be the
one it names: a file that does not match ends the archive before its central directory, so a
damaged download cannot pass for a good one. The objects are read from the bucket in pieces and
written to the archive as they come; nothing is kept on disk or whole in memory.

The bucket and prefix are this host's backup settings (``SEALMAIL_BACKUP_*``): where data hosts
back up under their own prefixes, the web's prefix must name the data host whose mailboxes it
serves.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sealmail.backup import keys, openmailbox
from sealmail.backup.errors import BackupError
from sealmail.backup.manifest import Entry, run_time
from sealmail.backup.run import list_runs, load_manifest
from sealmail.backup.s3 import Bucket
from sealmail.zipstream import ZipStream

if TYPE_CHECKING:
    from sealmail.config.models import AliasCredential
    from sealmail.settings import Settings

README = """Your mailbox as the backup of {taken} (UTC) holds it, still encrypted.

mailbox.sqlite (and mailbox.sqlite-wal, when there is one) is the mailbox's SQLCipher database:
keep the two files together, with these names. keys.json holds its key, locked with your password
(and with your recovery key, if you had made one when you downloaded this). Neither opens without
them.

To open it:

1. Unpack this archive into a directory of its own.
2. Install what the script needs (once):  python3 -m pip install argon2-cffi cryptography sqlcipher3
3. In that directory, run:  python3 open-mailbox.py --decrypt mailbox-plain.sqlite
   It asks for the password the mailbox had when you downloaded this archive (or, with --recovery,
   for the recovery key) and writes an ordinary SQLite database: folders, messages and their parts,
   readable with any SQLite tool. That copy is your mail in clear: keep it where you keep your mail.
   python3 open-mailbox.py --key prints the database key instead, for DB Browser for SQLite
   (open the file with SQLCipher 4 defaults and "Raw key").

To read the messages in a mail program, download the export (mbox or .eml) from the same page:
that is your mail in the formats mail programs import. This backup is for keeping, and for an
administrator to restore into Sealmail.
"""


@dataclass(frozen=True, slots=True)
class BackupCopy:
    """The mailbox's files in the newest backup run."""

    run: str
    entries: tuple[Entry, ...]  # the database, then its WAL if the run has one

    @property
    def taken_at(self) -> datetime:
        return run_time(self.run)

    @property
    def size(self) -> int:
        return sum(e.stored_size for e in self.entries)


def _names(mailbox_id: str) -> tuple[str, str]:
    name = f"data/mailboxes/{mailbox_id}.sqlite"
    return name, name + "-wal"


def latest_copy(settings: Settings, mailbox_id: str) -> BackupCopy | None:
    """The mailbox in the newest run; None when no run holds it (no backup yet, or not since it was
    made). ``BackupError`` when backups are not set up here or the bucket cannot be read."""
    with Bucket(settings) as bucket:  # first: "backups are not configured" says the most
        manifest_key = keys.manifest_key(
            settings.backup_manifest_key.get_secret_value() if settings.backup_manifest_key else None
        )
        runs = list_runs(bucket)
        if not runs:
            return None
        manifest = load_manifest(bucket, runs[-1], manifest_key)
    database, wal = _names(mailbox_id)
    by_name = {e.name: e for e in manifest.entries if not e.secret}
    if database not in by_name:
        return None
    return BackupCopy(manifest.run, tuple(by_name[n] for n in (database, wal) if n in by_name))


def key_file(alias_id: str, credential: AliasCredential) -> bytes:
    """``keys.json``: the wrapped mailbox key as the config store holds it now (see the module docstring)."""

    def b64(value: bytes | None) -> str:
        assert value is not None
        return base64.b64encode(value).decode("ascii")

    recovery = None
    if credential.recovery_salt and credential.recovery_mailbox:
        recovery = {"salt": b64(credential.recovery_salt), "mailbox_key": b64(credential.recovery_mailbox)}
    document = {
        "format": openmailbox.FORMAT,
        "version": 1,
        "alias_id": alias_id,
        "kdf": credential.key_kdf,
        "salt": b64(credential.key_salt),
        "mailbox_key": b64(credential.key_mailbox),
        "recovery": recovery,
    }
    return json.dumps(document, indent=1).encode()


def archive(settings: Settings, copy: BackupCopy, key_document: bytes) -> Iterator[bytes]:
    """The zip archive, piece by piece (blocking: run it on a worker thread)."""
    out = ZipStream()
    try:
        yield from _archive(settings, copy, key_document, out)
    finally:
        out.abandon()  # a finished archive is closed already: this only drops an unfinished one


def _archive(settings: Settings, copy: BackupCopy, key_document: bytes, out: ZipStream) -> Iterator[bytes]:
    with Bucket(settings) as bucket:
        for entry, filename in zip(copy.entries, ("mailbox.sqlite", "mailbox.sqlite-wal"), strict=False):
            digest = hashlib.sha256()
            size = 0
            with out.open(filename, compress=False, size_hint=entry.stored_size, modified=copy.taken_at) as target:
                for piece in bucket.stream(entry.object):
                    digest.update(piece)
                    size += len(piece)
                    target.write(piece)
                    yield out.take()
            if size != entry.stored_size or digest.hexdigest() != entry.stored_sha256:
                raise BackupError(f"the backup's copy of {filename} does not match its manifest: it is damaged")
    out.add("keys.json", key_document)
    out.add("open-mailbox.py", inspect.getsource(openmailbox).encode())
    out.add("README.txt", README.format(taken=copy.taken_at.strftime("%Y-%m-%d %H:%M")).encode())
    yield out.close()
