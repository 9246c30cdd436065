"""The exclusive POP3 lock on a maildrop (RFC 1939 §8), as the store grants it.

Here it is an ``flock`` on ``<data>/mailboxes/<mailbox id>.pop3.lock`` beside the mailbox, so it holds
between every process of the host that owns the files, and the kernel releases it if a process
dies. Front-ends on other hosts ask the data host's store for it (``store.remote``): the store takes
this same lock for their session and lets go of it when the session or its connection ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class MaildropLock:
    """An held ``flock`` on one mailbox's POP3 lock file."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @staticmethod
    def path(data_dir: Path, mailbox_id: str) -> Path:
        return data_dir / "mailboxes" / f"{mailbox_id}.pop3.lock"

    @classmethod
    def acquire(cls, data_dir: Path, mailbox_id: str) -> MaildropLock | None:
        """The lock, or None when another POP3 session holds it. Never blocks."""
        path = cls.path(data_dir, mailbox_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release_now(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    async def release(self) -> None:
        self.release_now()
