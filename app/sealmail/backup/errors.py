from __future__ import annotations

from sealmail.errors import SealmailError


class BackupError(SealmailError):
    """A backup, verify or restore could not be done; the message says why in one line."""
