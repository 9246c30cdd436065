"""Headless chromium for the browser tests: Debian's binary driven by Playwright, and where screenshots go.

Playwright's own browser download fails on these machines; Debian's chromium (``scripts/system-deps
test``) runs headless with these flags."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ROOT = Path(__file__).resolve().parents[1]


def launch(playwright: Any) -> Any:
    """Debian's chromium, started by ``playwright`` (``sync_playwright()``'s object); a missing one
    fails the test, naming the package script that installs it."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (scripts/system-deps test installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


def shots_dir(*parts: str) -> Path:
    """An empty ``$SEALMAIL_TEST_OUTPUT/<parts>`` (default ``test-output/`` at the repository root)."""
    directory = Path(os.environ.get("SEALMAIL_TEST_OUTPUT") or ROOT / "test-output").joinpath(*parts)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
