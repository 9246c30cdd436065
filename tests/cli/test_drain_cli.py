"""``sealmail drain on|off`` against a running ``sealmail serve mx`` (two session processes): the
real CLI and the real process, over real sockets.

RFC 5321 §3.8: a server that cannot take mail now answers 421 and closes; the sender keeps the
message and tries the next MX (the rollout's other host) or this one later. Sessions opened
before the drain go on until they end, and ``sealmail status --json`` shows the host draining
and how many sessions are still open.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import pytest

from support import wait_for


def _greeting(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, sock.makefile("rb").readline()


def _cli(sealmail_bin: str, env: dict[str, str], *args: str) -> dict:
    out = subprocess.run(
        [sealmail_bin, *args, "--json"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def mx_process(sealmail_bin, clean_env, settings):
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PROCESSES": "2",
        "SEALMAIL_MX_AUTH_WORKERS": "1",
    }
    ready = settings.run_dir / "mx.json"
    proc = subprocess.Popen([sealmail_bin, "serve", "mx"], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60, what="mx.json")
        assert proc.poll() is None, "the MX did not start"
        yield env, json.loads(ready.read_text())["ports"]["mx"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_drained_mx_answers_421_4_3_2_and_open_sessions_go_on_rfc5321_3_8(sealmail_bin, mx_process) -> None:
    env, port = mx_process
    before, greeting = _greeting(port)
    assert greeting.startswith(b"220")
    status = _cli(sealmail_bin, env, "status")
    assert status["draining"] is False
    wait_for(lambda: _cli(sealmail_bin, env, "status")["components"]["mx"].get("sessions") == 1, what="1 session")

    # Bounded: the open session keeps it from being drained within the wait.
    drained = _cli(sealmail_bin, env, "drain", "on", "--wait", "1.5")
    assert drained["draining"] is True
    assert drained["drained"] is False
    assert drained["sessions"]["mx"] == 1
    assert _cli(sealmail_bin, env, "status")["draining"] is True

    refused, reply = _greeting(port)
    refused.close()
    assert reply.startswith(b"421 4.3.2 "), reply

    # The session opened before the drain still works.
    with before:
        before.sendall(b"EHLO client.example.org\r\n")
        lines = before.makefile("rb")
        while not (line := lines.readline()).startswith(b"250 "):
            assert line.startswith(b"250-"), line
        before.sendall(b"QUIT\r\n")
        assert lines.readline().startswith(b"221")

    # Once it ended, the drain completes.
    drained = _cli(sealmail_bin, env, "drain", "on", "--wait", "20")
    assert drained["drained"] is True
    assert drained["sessions"] == {"mx": 0}

    readmitted = _cli(sealmail_bin, env, "drain", "off")
    assert readmitted["draining"] is False
    assert _cli(sealmail_bin, env, "status")["draining"] is False
    again, greeting = _greeting(port)
    again.close()
    assert greeting.startswith(b"220")
