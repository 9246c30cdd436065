"""The Molecule test suites cannot pass while testing nothing.

Their component and port tests are parametrised from ``sealmail components --json`` run on the host
(molecule/conftest.py). When that command fails, the run must fail at collection with the reason,
not turn into an empty parameter list that pytest skips. Shown here with a fake ``podman`` on PATH,
without Molecule: the conftest's function itself, and a whole pytest run of a scenario-like folder
with molecule/pytest.ini.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = ROOT / "molecule"

SCENARIO = """\
platforms:
  - name: fake-sealmail-host
    groups: [sealmail]
"""

TESTS = """\
def test_component(component):
    assert component


def test_component_port(component_port):
    assert component_port
"""


def fake_podman(bin_dir: Path, *, exit_code: int, stdout: str = "") -> dict[str, str]:
    """A ``podman`` that prints ``stdout`` and exits ``exit_code``; the environment that finds it first."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "podman"
    script.write_text(
        f"#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\necho 'fake podman: no such container' >&2\nexit {exit_code}\n"
    )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def load_conftest():
    spec = importlib.util.spec_from_file_location("molecule_conftest", MOLECULE / "conftest.py")
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_a_failing_components_command_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = fake_podman(tmp_path / "bin", exit_code=1)
    monkeypatch.setenv("PATH", env["PATH"])
    conftest = load_conftest()
    with pytest.raises(pytest.fail.Exception, match=r"exited 1: the component and port tests cannot be parametrised"):
        conftest.installed_components("fake-sealmail-host")


@pytest.mark.parametrize(
    ("exit_code", "stdout", "reason"),
    [
        (1, "", "exited 1"),
        (0, "not json", "printed no JSON"),
        (0, json.dumps([{"name": "mx", "available": False, "ports": {}, "listeners": []}]), "no available component"),
    ],
    ids=["fails", "garbage", "nothing-available"],
)
def test_the_molecule_run_fails_at_collection(tmp_path: Path, exit_code: int, stdout: str, reason: str) -> None:
    """pytest with molecule/pytest.ini and molecule/conftest.py, as Molecule's verifier runs it."""
    scenario = tmp_path / "scenario"
    (scenario / "tests").mkdir(parents=True)
    shutil.copy(MOLECULE / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(MOLECULE / "pytest.ini", tmp_path / "pytest.ini")
    (scenario / "molecule.yml").write_text(SCENARIO)
    (scenario / "tests" / "test_components.py").write_text(TESTS)
    env = fake_podman(tmp_path / "bin", exit_code=exit_code, stdout=stdout)
    env["MOLECULE_SCENARIO_DIRECTORY"] = str(scenario)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "../pytest.ini", "-p", "no:cacheprovider", "tests"],
        cwd=scenario,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == pytest.ExitCode.INTERRUPTED, run.stdout + run.stderr  # collection errors
    assert reason in run.stdout, run.stdout
    assert "skipped" not in run.stdout


def test_an_empty_parameter_list_fails_collection(tmp_path: Path) -> None:
    """molecule/pytest.ini: ``empty_parameter_set_mark = fail_at_collect``."""
    (tmp_path / "test_empty.py").write_text(
        "import pytest\n\n\n@pytest.mark.parametrize('x', [])\ndef test_nothing(x):\n    pass\n"
    )
    shutil.copy(MOLECULE / "pytest.ini", tmp_path / "pytest.ini")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_empty.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == pytest.ExitCode.INTERRUPTED, run.stdout + run.stderr
    assert "Empty parameter set" in run.stdout, run.stdout
