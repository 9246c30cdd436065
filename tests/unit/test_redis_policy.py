"""Components refuse to start on a Redis that may evict their security state (issue 16, item 13).

Redis evicts keys only at ``maxmemory``; with ``volatile-*`` it evicts keys that have an expiry,
which is exactly what login lockout counters and single-use TOTP markers are. Checked against real
redis-server processes started with each policy.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis

from support import free_port


@pytest.fixture
def start_redis(tmp_path):
    started: list[subprocess.Popen] = []

    def start(*config: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
                *config,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                return url
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def _serve(sealmail_bin, clean_env, tmp_path, url, **extra) -> subprocess.CompletedProcess | None:
    """Start ``sealmail serve jobs``: None once it reports ready (then stopped), else how it exited."""
    data = tmp_path / "data"
    env = {**clean_env, "SEALMAIL_DATA_DIR": str(data), "SEALMAIL_REDIS_URL": url, **extra}
    proc = subprocess.Popen(
        [sealmail_bin, "serve", "jobs"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if (data / "run" / "jobs.json").exists():
                return None
            time.sleep(0.05)
        if proc.poll() is None:
            pytest.fail("the component neither started nor exited")
        out, err = proc.communicate(timeout=10)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=10)


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru", "volatile-ttl"])
def test_a_component_refuses_a_redis_that_evicts(sealmail_bin, clean_env, tmp_path, start_redis, policy) -> None:
    url = start_redis("--maxmemory", "100mb", "--maxmemory-policy", policy)
    result = _serve(sealmail_bin, clean_env, tmp_path, url)
    assert result is not None, "the component started on an evicting Redis"
    assert result.returncode != 0
    assert "maxmemory-policy" in result.stderr
    assert "noeviction" in result.stderr


def test_noeviction_or_no_cap_starts(sealmail_bin, clean_env, tmp_path, start_redis) -> None:
    assert _serve(sealmail_bin, clean_env, tmp_path, start_redis("--maxmemory", "100mb")) is None  # noeviction
    # Without a memory cap nothing is ever evicted, whatever the policy.
    uncapped = start_redis("--maxmemory", "0", "--maxmemory-policy", "volatile-lru")
    assert _serve(sealmail_bin, clean_env, tmp_path / "b", uncapped) is None


def test_the_check_can_be_waived(sealmail_bin, clean_env, tmp_path, start_redis) -> None:
    url = start_redis("--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru")
    assert _serve(sealmail_bin, clean_env, tmp_path, url, SEALMAIL_REDIS_ALLOW_EVICTION="true") is None
