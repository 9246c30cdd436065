"""Shared fixtures: settings on a temporary data directory, cheap Argon2 for speed, the CLI binary."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path):
    from sealmail.settings import Settings

    # Minimum Argon2 cost: tests check behaviour, not the tuned cost (bench/ measures that).
    return Settings(data_dir=tmp_path / "data", argon2_time_cost=1, argon2_memory_kib=8192)


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
