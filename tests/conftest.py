"""Shared fixtures: settings on a temporary data directory, cheap Argon2 for speed, the CLI binary."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from support import free_port, require_tool

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path):
    from sealmail.settings import Settings

    # Minimum Argon2 cost: tests check behaviour, not the tuned cost (bench/ measures that).
    return Settings(data_dir=tmp_path / "data", argon2_time_cost=1, argon2_memory_kib=8192, scram_iterations=4096)


@pytest.fixture(scope="session")
def sealmail_bin() -> str:
    """The real console script of the installed package."""
    candidate = Path(sys.executable).parent / "sealmail"
    found = str(candidate) if candidate.exists() else shutil.which("sealmail")
    if not found:
        pytest.fail("the sealmail console script is not installed (run `make test`)")
    return found


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A process environment without any SEALMAIL_ or Forward Email compat variables."""
    for name in list(os.environ):
        if name.startswith("SEALMAIL_") or name in {"DOMAIN", "EMAIL", "AUTH_BASIC_USERNAME", "AUTH_BASIC_PASSWORD"}:
            monkeypatch.delenv(name)
    return dict(os.environ)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real Debian redis-server on a free loopback port for the whole session (stopped by PID)."""
    import subprocess
    import time

    import redis

    binary = require_tool("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.tool("swaks")``: the tools a test runs (``support.require_tool``: under CI=true a
    missing one fails the test, locally it skips it, naming the apt package)."""
    for mark in item.iter_markers("tool"):
        for name in mark.args:
            require_tool(name)


@pytest.fixture(scope="session")
def rspamd(tmp_path_factory: pytest.TempPathFactory, redis_url: str):
    """A real rspamd (``tests/rspamdkit.py``) for the whole session, with its own DNS server and Redis."""
    from rspamdkit import RspamdServer

    server = RspamdServer(tmp_path_factory.mktemp("rspamd"), redis_url)
    server.start()
    print(f"\nrspamd answered {server.started_in:.2f} s after its start")
    yield server
    server.close()
