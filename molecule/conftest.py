"""testinfra for the Molecule scenarios.

Hosts are reached as ``podman://<container>`` (one ``podman exec`` per command) rather than
through Ansible (one Ansible call per command, seconds each). The containers are the scenario's
platforms, named in its molecule.yml; tests ask for them by inventory group.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path.cwd()))
PROJECT_DIR = Path(__file__).resolve().parent.parent
SEALMAIL_BIN = "/opt/sealmail/venv/bin/sealmail"


def platforms() -> list[dict]:
    return yaml.safe_load((SCENARIO_DIR / "molecule.yml").read_text())["platforms"]


def container_in(group: str) -> str | None:
    for platform in platforms():
        if group in platform.get("groups", []):
            return platform["name"]
    return None


def host_vars(name: str) -> dict:
    config = yaml.safe_load((SCENARIO_DIR / "molecule.yml").read_text())
    return config.get("provisioner", {}).get("inventory", {}).get("host_vars", {}).get(name, {})


def installed_components(container: str) -> list[dict]:
    """``sealmail components --json`` on the host, or [] when the app is not installed there."""
    result = subprocess.run(
        ["podman", "exec", container, SEALMAIL_BIN, "components", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(result.stdout) if result.returncode == 0 else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise over what the installed version has, so tests grow as components land."""
    wanted = {"component", "component_port"} & set(metafunc.fixturenames)
    if not wanted:
        return
    container = container_in("sealmail")
    available = [c for c in installed_components(container) if c["available"]] if container else []
    if "component" in metafunc.fixturenames:
        metafunc.parametrize("component", [c["name"] for c in available])
    if "component_port" in metafunc.fixturenames:
        params = [(c["name"], key, setting) for c in available for key, setting in c["ports"].items()]
        metafunc.parametrize("component_port", params, ids=[f"{c}-{k}" for c, k, _ in params])


@pytest.fixture(scope="session")
def sealmail_host():
    name = container_in("sealmail")
    if name is None:
        pytest.fail("this scenario's molecule.yml puts no platform in the sealmail group")
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="session")
def probe():
    name = container_in("probe")
    if name is None:
        pytest.skip("this scenario has no probe container")
    return testinfra.get_host(f"podman://{name}")
