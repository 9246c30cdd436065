"""kill -9 of the MX right after 250 loses nothing: the message is in the spool after a restart."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import time

import pytest

from sealmail.services import aliases, credentials, domains
from sealmail.store.mailstore import MailStore

from mailgen import message

pytestmark = pytest.mark.slow


def _start_mx(sealmail_bin: str, env: dict[str, str], run_dir) -> tuple[subprocess.Popen, int]:
    ready = run_dir / "mx.json"
    ready.unlink(missing_ok=True)
    errors = run_dir.parent / "mx.stderr"
    with errors.open("ab") as sink:
        proc = subprocess.Popen([sealmail_bin, "serve", "mx"], env=env, stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"mx did not start: {errors.read_text()}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())["ports"]["mx"]


def test_kill_9_after_250_loses_nothing(sealmail_bin, clean_env, settings, config) -> None:
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    password = credentials.set_password(config, settings, "demo@example.test")
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
    }
    accepted = 0
    for round_ in range(3):
        proc, port = _start_mx(sealmail_bin, env, settings.run_dir)
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
        for n in range(5):
            assert client.sendmail("a@example.org", ["demo@example.test"], message(round_ * 5 + n)) == {}
            accepted += 1
        proc.send_signal(signal.SIGKILL)  # right after the last 250, before QUIT
        proc.wait(timeout=10)
        client.close()

    unlocked = credentials.unlock(config, settings, "demo@example.test", password)
    store = MailStore(settings.data_dir)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        result = box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key)
        assert result.drained == accepted == 15
        subjects = sorted(box.header(i.body_id).split(b"Subject: ")[1].split(b"\r\n")[0] for i in box.messages("INBOX"))
        assert subjects == sorted(f"Message number {n}".encode() for n in range(15))
    finally:
        box.close()
    assert os.path.exists(settings.data_dir / "spool")
