"""Server secrets kept in the data directory: made once (owner-only, fsynced), then only read."""

from __future__ import annotations

import os
from pathlib import Path


def secret_file(path: Path, size: int = 32) -> bytes:
    """The bytes in ``path``, created with ``size`` random bytes and mode 0600 if it does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(size))
            fh.flush()
            os.fsync(fh.fileno())
    return path.read_bytes()
