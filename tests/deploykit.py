"""Running the real ansible-playbook of the deployment venv from the deploy tests (tests/deploy/):
roles and templates rendered on this machine with a local connection, never applied to it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK_BIN = ROOT / ".venv-deploy/bin/ansible-playbook"


def need_ansible() -> None:
    """``make test`` builds the deployment venv first (deploy-lint); under CI its absence fails."""
    if not PLAYBOOK_BIN.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the deployment venv is missing (make deploy-venv)", pytrace=False)
        pytest.skip("the deployment venv is missing (make deploy-venv)")


def run_playbook(playbook: Path, inventory: Path, extra: dict | None = None) -> str:
    """``ansible-playbook -i inventory [-e extra] playbook`` with the repository's ansible.cfg: its
    output (the assertion message when it fails)."""
    need_ansible()
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": f"{PLAYBOOK_BIN.parent}:{os.environ['PATH']}",
    }
    argv = [str(PLAYBOOK_BIN), "-i", str(inventory), *(["-e", json.dumps(extra)] if extra else []), str(playbook)]
    done = subprocess.run(argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
