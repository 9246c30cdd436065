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
    """``sealmail components --json`` on the host.

    Fails (at collection, with the reason) when the command fails or says nothing useful: every
    component and port test is parametrised from it, and an empty list would let the run pass with
    those tests never run.
    """
    argv = ["podman", "exec", container, SEALMAIL_BIN, "components", "--json"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"`{' '.join(argv)}` could not run: {exc}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` exited {result.returncode}: the component and port tests cannot be "
                    f"parametrised\n{result.stdout}{result.stderr}", pytrace=False)
    try:
        components = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"`{' '.join(argv)}` printed no JSON ({exc}):\n{result.stdout}", pytrace=False)
    if not isinstance(components, list) or not any(c.get("available") for c in components):
        pytest.fail(f"`{' '.join(argv)}` lists no available component:\n{result.stdout}", pytrace=False)
    return components


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise over what the installed version has, so tests grow as components land.

    ``component``: each component the host runs (available in this version and placed here by the
    role: ``here``); ``component_port``: (component, listener) for each port of those (the listener
    as ``sealmail components --json`` gives it: key, setting, port, tls, public); ``private_port``:
    (component, runs_here, listener) for each port that must not be reachable from outside, whether
    its component runs on this host or not.
    """
    wanted = {"component", "component_port", "private_port"} & set(metafunc.fixturenames)
    if not wanted:
        return
    container = container_in("sealmail")
    if container is None:
        pytest.fail(f"{metafunc.function.__name__} needs a platform in the sealmail group; this scenario has none",
                    pytrace=False)
    components = installed_components(container)
    available = [c for c in components if c["available"] and c.get("here", True)]
    if "component" in metafunc.fixturenames:
        metafunc.parametrize("component", [c["name"] for c in available])
    if "component_port" in metafunc.fixturenames:
        params = [(c["name"], listener) for c in available for listener in c["listeners"]]
        metafunc.parametrize("component_port", params, ids=[f"{c}-{listener['key']}" for c, listener in params])
    if "private_port" in metafunc.fixturenames:
        private = [(c["name"], c["available"] and c.get("here", True), listener) for c in components
                   for listener in c["listeners"] if not listener["public"]]
        metafunc.parametrize("private_port", private, ids=[f"{c}-{listener['key']}" for c, _, listener in private])


@pytest.fixture(scope="session")
def sealmail_host():
    import testinfra

    name = container_in("sealmail")
    if name is None:
        pytest.fail("this scenario's molecule.yml puts no platform in the sealmail group")
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="session")
def probe():
    import testinfra

    name = container_in("probe")
    if name is None:
        pytest.fail("this test needs a container in the probe group; this scenario has none")
    return testinfra.get_host(f"podman://{name}")
