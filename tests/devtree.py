"""A whole `sealmail dev` tree for a test: every component as its own process, ports chosen by the kernel.

``tests/e2e`` starts one per test; ``tests/interop/test_roundcube.py`` one per module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sealmail.dev import DEV_PORTS

# The settings a developer's shell may carry that would change the tree (conftest's ``clean_env``).
FOREIGN_SETTINGS = {"DOMAIN", "EMAIL", "AUTH_BASIC_USERNAME", "AUTH_BASIC_PASSWORD"}


def clean_environ() -> dict[str, str]:
    """This process's environment without any SEALMAIL_ or Forward Email compat variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_") and k not in FOREIGN_SETTINGS}


def port_env() -> dict[str, str]:
    """Port 0 everywhere, so the test never collides with a running `make dev` or another test."""
    return {f"SEALMAIL_{name.upper()}": "0" for name in DEV_PORTS}


def start(sealmail_bin: str, data_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sealmail_bin, "dev", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_dev_json(proc: subprocess.Popen, path: Path, after: float, timeout: float = 240) -> dict:
    # 240 s: on a machine where rspamd never ran, its first start compiles its rules for a minute or so.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sealmail dev exited early with {proc.returncode}:\n{proc.stdout.read()}")
        if path.exists() and path.stat().st_mtime >= after:
            return json.loads(path.read_text())
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"dev.json not written within {timeout} s:\n{proc.stdout.read()}")


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out
