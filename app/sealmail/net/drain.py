"""Draining a host before it is upgraded or taken out: new connections are turned away, open
sessions go on until they end (or until the component stops).

``sealmail drain on`` writes a flag file (``<run_dir>/drain``) and ``sealmail drain off`` removes
it; every component that accepts connections looks for it when a connection arrives (one
``stat``, no watcher to fall behind), so draining takes effect at once, in every process of a
component, and survives a restart of the components (an upgrade restarts them while the host is
still drained; the rollout re-admits it afterwards).

While draining, a new connection gets the protocol's temporary refusal and is closed:
the MX and submission ``421 4.3.2`` (RFC 5321 §3.8: senders retry, another MX meanwhile), IMAP
``* BYE [UNAVAILABLE]`` (RFC 5530 §3), POP3 ``-ERR [SYS/TEMP]`` (RFC 3206 §4), ManageSieve
``BYE (TRYLATER)`` (RFC 5804 §1.3).
"""

from __future__ import annotations

import os
from pathlib import Path

FLAG_NAME = "drain"

SMTP_DRAINING = b"421 4.3.2 This server is draining; try another MX or again later\r\n"
IMAP_DRAINING = b"* BYE [UNAVAILABLE] This server is draining; try again later\r\n"
POP3_DRAINING = b"-ERR [SYS/TEMP] This server is draining; try again later\r\n"
MANAGESIEVE_DRAINING = b'BYE (TRYLATER) "This server is draining; try again later"\r\n'


def flag_path(run_dir: Path) -> Path:
    return run_dir / FLAG_NAME


class DrainFlag:
    """``flag()`` is true while the host is drained; cheap enough to ask on every connection."""

    __slots__ = ("path",)

    def __init__(self, run_dir: Path) -> None:
        self.path = str(flag_path(run_dir))

    def __call__(self) -> bool:
        return os.path.exists(self.path)


def set_draining(run_dir: Path, on: bool) -> bool:
    """Put the host into drain (``on``) or re-admit it; returns whether it was draining before."""
    path = flag_path(run_dir)
    before = path.exists()
    if on:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.fsync(fd)
        os.close(fd)
    else:
        path.unlink(missing_ok=True)
    return before
