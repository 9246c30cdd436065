"""`sealmail dev` comes up, writes dev.json with listening ports, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from sealmail import components
from sealmail.dev import DEV_PORTS

pytestmark = pytest.mark.slow


def _processes_mentioning(marker: str) -> list[int]:
    """PIDs whose environment, command line or working directory names ``marker`` (the data directory).

    Redis rewrites its process title over its environment, but it runs in its data directory.
    """
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                needle in (entry / "environ").read_bytes()
                or needle in (entry / "cmdline").read_bytes()
                or os.readlink(entry / "cwd").startswith(marker)
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _port_env() -> dict[str, str]:
    """Port 0 everywhere, so the test never collides with a running `make dev` or another test."""
    return {f"SEALMAIL_{name.upper()}": "0" for name in DEV_PORTS}


def _start(sealmail_bin: str, data_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sealmail_bin, "dev", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_dev_json(proc: subprocess.Popen, path: Path, after: float, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sealmail dev exited early with {proc.returncode}:\n{proc.stdout.read()}")
        if path.exists() and path.stat().st_mtime >= after:
            return json.loads(path.read_text())
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"dev.json not written within {timeout} s:\n{proc.stdout.read()}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_dev_comes_up_and_stops_cleanly(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    env = {**clean_env, **_port_env()}
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, env)
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        assert info["domain"] == "example.test"
        assert info["alias"] == "demo@example.test"
        assert len(info["password"]) >= 20
        assert info["basic_auth"]["username"]
        assert len(info["basic_auth"]["password"]) >= 20
        assert Path(info["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert info["data_dir"] == str(data_dir)

        # Every available component reports every port it exports, and each one accepts connections.
        expected = {key for name in components.available() for key in components.PORTS[name]}
        assert set(info["ports"]) == expected
        for port in info["ports"].values():
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass

        # The private Redis runs, with a password, and only for this tree.
        children = _processes_mentioning(str(data_dir))
        assert children, "sealmail dev started no child process"
        redis_pids = [p for p in children if b"redis-server" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(redis_pids) == 1
        with pytest.raises(redis.AuthenticationError):
            _redis_without_password(redis_pids[0])

        # The password does not leak into the command line of any child.
        for pid in children:
            assert info["password"].encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        out = _stop(proc)
    assert "Sealmail is running on localhost" in out
    assert info["basic_auth"]["password"] in out
    time.sleep(0.2)
    assert _processes_mentioning(str(data_dir)) == []


def _listening_ports(pid: int) -> list[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _redis_without_password(pid: int) -> None:
    (port,) = _listening_ports(pid)
    redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).set("probe", "1")


def test_second_run_reuses_data_and_password(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    env = {**clean_env, **_port_env()}
    first_start = time.time() - 1
    proc = _start(sealmail_bin, data_dir, env)
    try:
        first = _wait_for_dev_json(proc, data_dir / "dev.json", first_start)
        # A second supervisor on the same data directory refuses to start.
        clash = subprocess.run(
            [sealmail_bin, "dev", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert clash.returncode == 1
        assert "another sealmail dev" in clash.stderr
        # A second terminal manages the running instance through the same data directory.
        listed = subprocess.run(
            [sealmail_bin, "alias", "list", "--json", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert [a["address"] for a in json.loads(listed.stdout)] == ["demo@example.test"]
    finally:
        _stop(proc)

    second_start = time.time()
    proc = _start(sealmail_bin, data_dir, env)
    try:
        second = _wait_for_dev_json(proc, data_dir / "dev.json", second_start)
    finally:
        _stop(proc)
    assert second["password"] == first["password"]
    assert second["basic_auth"] == first["basic_auth"]
    assert second["alias"] == first["alias"]


def test_sigint_like_ctrl_c_stops_everything(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    _wait_for_dev_json(proc, data_dir / "dev.json", started)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    time.sleep(0.2)
    assert _processes_mentioning(str(data_dir)) == []


def test_killed_supervisor_takes_its_children_along(sealmail_bin, clean_env, tmp_path) -> None:
    """Even `kill -9` of the supervisor leaves nothing running (children have a parent-death signal)."""
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    _wait_for_dev_json(proc, data_dir / "dev.json", started)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while _processes_mentioning(str(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(data_dir)) == []
