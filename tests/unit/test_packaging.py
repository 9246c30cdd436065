"""The wheel a host installs carries every file the package reads at run time.

A deployed host has only the installed package, never the source tree: a template or asset
missing from the wheel breaks ``sealmail serve web`` there while every test from the source
tree still passes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def test_wheel_contains_every_package_file(tmp_path: Path) -> None:
    # Built from a copy as a host gets it: a local build/ or egg-info would hide a missing entry.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(APP / "pyproject.toml", source)
    shutil.copytree(APP / "sealmail", source / "sealmail", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("sealmail-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        path.relative_to(APP).as_posix()
        for path in (APP / "sealmail").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert wanted, "no package files found"
    assert sorted(wanted - inside) == []
