"""The example cloud-init user-data shows the operator where the secrets are, never the secrets:
the console (and the provider's serial-console log, which keeps it) gets a pointer to the
root-only summary, not the summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
USER_DATA = ROOT / "cloud-init" / "user-data.yml"
SUMMARY = "/root/sealmail-summary.txt"


def _commands() -> list[str]:
    data = yaml.safe_load(USER_DATA.read_text())
    return [entry[-1] if isinstance(entry, list) else entry for entry in data["runcmd"]]


def test_what_runcmd_writes_to_the_console_holds_no_secret(tmp_path: Path) -> None:
    secret = "basic-auth-password-Zq81"
    summary = tmp_path / "summary.txt"
    summary.write_text(f"Web admin: https://example.com/  (basic auth: admin / {secret})\n")
    console = tmp_path / "console"
    console.touch()
    to_console = [c for c in _commands() if "/dev/console" in c]
    assert to_console, "the operator is told on the console where to look"
    for command in to_console:
        script = command.replace("/dev/console", str(console)).replace(SUMMARY, str(summary))
        subprocess.run(["bash", "-c", script], check=True, timeout=30)
    shown = console.read_text()
    assert secret not in shown
    assert str(summary) in shown  # where the operator (root) reads it


def test_the_final_message_holds_no_secret() -> None:
    message = yaml.safe_load(USER_DATA.read_text())["final_message"]
    assert SUMMARY in message
    assert "PASSWORD" not in message.upper()
