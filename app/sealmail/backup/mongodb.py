"""The MongoDB config store in a backup: ``mongodump`` out, ``mongorestore`` back.

The archive (``--archive --gzip``) never touches the disk in clear: mongodump writes it to a pipe,
the backup seals it in memory (``keys.seal_secret``, like every other secret) and uploads the
sealed box; restore opens the box in memory and writes it to mongorestore's stdin. The URL, which
holds the password, is never an argument (any local user can read a process's arguments): it is
handed over in mongodump's YAML ``--config`` file, read from an inherited pipe (``/dev/fd/N``).
Error messages are the tools' own last lines, with the password removed should it appear.

The archive holds the one database of the settings (``--db``); ``mongorestore --drop`` replaces
its collections, and ``--nsFrom``/``--nsTo`` rename it when the database is named differently now.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sealmail.backup.errors import BackupError

if TYPE_CHECKING:
    from sealmail.settings import Settings

PREFIX = "mongodb:"  # manifest entries: "mongodb:<database>"
TIMEOUT = 3600


def entry_name(database: str) -> str:
    return PREFIX + database


def database_of(name: str) -> str:
    return name[len(PREFIX) :]


def _url(settings: Settings) -> str:
    if settings.config_backend != "mongodb" or settings.mongodb_url is None:
        raise BackupError(
            "this run holds a MongoDB config store: set SEALMAIL_CONFIG_BACKEND=mongodb and SEALMAIL_MONGODB_URL "
            "to restore it"
        )
    return settings.mongodb_url.get_secret_value()


def _redact(text: str, url: str) -> str:
    password = urlsplit(url).password
    for secret in {url, password or "", unquote(password or "")} - {""}:
        text = text.replace(secret, "***")
    return text


def _run(tool: str, args: list[str], url: str, stdin: bytes | None) -> bytes:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(f"{tool} is not installed (MongoDB's database tools: mongodb-org-tools)")
    read_fd, write_fd = os.pipe()
    try:
        # One short line, far below a pipe's buffer: written before the tool starts.
        os.write(write_fd, f"uri: {json.dumps(url)}\n".encode())
        os.close(write_fd)
        write_fd = -1
        try:
            done = subprocess.run(
                [exe, f"--config=/dev/fd/{read_fd}", *args],
                input=stdin,
                capture_output=True,
                pass_fds=(read_fd,),
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BackupError(f"{tool} took longer than {TIMEOUT} s") from None
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = _redact(" ".join(lines[-3:]), url) or f"exit status {done.returncode}"
        raise BackupError(f"{tool} failed: {reason}")
    return done.stdout


def dump(settings: Settings) -> bytes:
    """The config store's database as a gzipped mongodump archive, in memory."""
    archive = _run(
        "mongodump", [f"--db={settings.mongodb_database}", "--archive", "--gzip", "--quiet"], _url(settings), None
    )
    if not archive:
        raise BackupError("mongodump wrote nothing")
    return archive


def check_restorable(settings: Settings) -> None:
    """Refuses before anything is written when this host cannot restore a MongoDB config store."""
    _url(settings)


def restore_archive(settings: Settings, name: str, archive: bytes) -> None:
    """Replaces the config store's collections with the archive's (mongorestore --drop)."""
    source, target = database_of(name), settings.mongodb_database
    args = ["--archive", "--gzip", "--drop", f"--nsInclude={source}.*", "--quiet"]
    if source != target:
        args += [f"--nsFrom={source}.*", f"--nsTo={target}.*"]
    _run("mongorestore", args, _url(settings), archive)
