"""Helpers shared by the SMTP tests: read what a mailbox received, and drive Debian's swaks.

Blocking functions: call them from a thread (``asyncio.to_thread``) when the server under test runs
on the test's own event loop.
"""

from __future__ import annotations

import subprocess
from typing import Any

from sealmail.services import credentials
from sealmail.store.mailstore import MailStore


def folder(settings: Any, config: Any, address: str, password: str, name: str = "INBOX") -> list[bytes]:
    """Unlock with the alias password, drain the spool and read a folder (what IMAP/POP3 do at login)."""
    unlocked = credentials.unlock(config, settings, address, password)
    store = MailStore(settings.data_dir)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key)
        return [box.raw(i.body_id) for i in box.messages(name)]
    finally:
        box.close()


def inbox(settings: Any, config: Any, address: str, password: str) -> list[bytes]:
    return folder(settings, config, address, password, "INBOX")


def swaks(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run swaks against 127.0.0.1:``port`` with the given options; the caller checks the result."""
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def verified_tls(ca: str) -> list[str]:
    """swaks options for STARTTLS with the certificate checked against ``ca`` (name: localhost)."""
    return ["--tls", "--tls-ca-path", ca, "--tls-verify", "--tls-sni", "localhost"]


def auth_plain(user: str, password: str) -> list[str]:
    return ["--auth", "PLAIN", "--auth-user", user, "--auth-password", password]
