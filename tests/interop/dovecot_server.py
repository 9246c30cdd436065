"""Start Debian's Dovecot as a foreground IMAP server on a loopback port, with its own config in a temp dir.

One Maildir++ folder per message (``m000``, ``m001``...), so each message is the only one in its
mailbox; a static passdb (any user, password ``secret``); no SSL; mail processes run as ``nobody``, so
this needs root (as CI and ``make test`` on these machines are). Stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "secret"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(base: Path, port: int) -> str:
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{base}/home/Maildir
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@contextlib.contextmanager
def running_dovecot(messages: list[bytes]) -> Iterator[tuple[int, list[str]]]:
    """Dovecot serving ``messages``; yields the port and the mailbox name of each message."""
    binary = dovecot_binary()
    if binary is None:
        raise RuntimeError("dovecot is not installed (scripts/system-deps test installs dovecot-imapd)")
    if os.geteuid() != 0:
        raise RuntimeError("Dovecot needs root here: it runs the mail process as nobody")
    base = Path(tempfile.mkdtemp(prefix="sealmail-dovecot-"))
    try:
        base.chmod(0o755)
        names = []
        for i, raw in enumerate(messages):
            name = f"m{i:03d}"
            folder = base / "home" / "Maildir" / f".{name}"
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True)
            (folder / "cur" / f"{1700000000 + i}.M{i}P1.sealmail-test,S={len(raw)}:2,").write_bytes(raw)
            names.append(name)
        for sub in ("run", "state"):
            (base / sub).mkdir()
        for path in (base / "home", *(base / "home").rglob("*")):
            shutil.chown(path, "nobody", "nogroup")
        port = _free_port()
        (base / "dovecot.conf").write_text(_config(base, port))
        proc = subprocess.Popen(
            [binary, "-F", "-c", str(base / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, proc, base)
            yield port, names
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen, base: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot exited ({proc.returncode}): {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start listening")
