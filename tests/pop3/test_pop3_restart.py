"""`sealmail serve pop3` as real processes: UIDL survives restarts; the maildrop lock spans processes."""

from __future__ import annotations

import json
import poplib
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pop3kit import deliver, make_account

pytestmark = pytest.mark.slow


def _message(n: int) -> bytes:
    return f"From: a@example.org\r\nSubject: restart {n}\r\n\r\nbody {n}\r\n".encode()


class Process:
    def __init__(self, sealmail_bin: str, env: dict[str, str], run_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sealmail_bin, "serve", "pop3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        marker = run_dir / "pop3.json"
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"sealmail serve pop3 exited with {self.proc.returncode}:\n{self.proc.stdout.read()}")
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("pid") == self.proc.pid:
                self.port = info["ports"]["pop3s"]
                return
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("sealmail serve pop3 did not report its ports")
            time.sleep(0.05)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out


def test_uidl_is_stable_across_restarts_and_the_lock_spans_processes(
    sealmail_bin, clean_env, pop3_settings, certs, client_context
) -> None:
    settings = pop3_settings
    account = make_account(settings, "pat@example.test")
    deliver(settings, account, *(_message(n) for n in (1, 2, 3)))
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_TLS_CERT_FILE": str(certs.cert),
        "SEALMAIL_TLS_KEY_FILE": str(certs.key),
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_POP3S_PORT": "0",
        "SEALMAIL_POP3_PORT": "0",
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
    }

    def login(port: int) -> poplib.POP3_SSL:
        client = poplib.POP3_SSL("127.0.0.1", port, context=client_context, timeout=30)
        client.user(account.address)
        client.pass_(account.password)
        return client

    first = Process(sealmail_bin, env, settings.run_dir)
    client = login(first.port)
    ids = client.uidl()[1]
    assert len(ids) == 3

    # Another POP3 process on the same host and data: the maildrop is locked (RFC 2449 §8.1.2).
    second = Process(sealmail_bin, env, settings.run_dir)
    other = poplib.POP3_SSL("127.0.0.1", second.port, context=client_context, timeout=30)
    other.user(account.address)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        other.pass_(account.password)
    other.quit()
    client.quit()
    first.stop()

    client = login(second.port)  # the other process, after the first one is gone
    assert client.uidl()[1] == ids
    client.dele(1)
    client.quit()
    second.stop()

    third = Process(sealmail_bin, env, settings.run_dir)
    client = login(third.port)
    assert client.uidl()[1] == [b"1 " + ids[1].split()[1], b"2 " + ids[2].split()[1]]
    client.quit()
    third.stop()
