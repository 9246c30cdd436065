"""Server secrets kept in the data directory: made once (owner-only, fsynced), then only read."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def secret_file(path: Path, size: int = 32) -> bytes:
    """The bytes in ``path``, created with ``size`` random bytes and mode 0600 if it does not exist.

    Several component processes start at once (``sealmail dev``) and may all find the file missing:
    the secret is written and fsynced under a temporary name and then linked into place, so a reader
    only ever sees the whole file, and the first link wins.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(size))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()
