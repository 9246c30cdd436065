"""Verify DKIM signatures and ARC chains with dkimpy as shipped, in a clean interpreter.

``verify(message, dns="127.0.0.1:PORT")`` or ``verify(message, keys={name: txt})`` runs
``tests/dkimpy_verify.py`` under ``python -I -S``: sealmail's DKIM classes (OpenSSL RSA, RFC-exact
relaxed header canonicalization) cannot even be imported there, and the script checks so.
Returns its lines: ``dkim <a> <d> <s> pass|fail <detail>`` and, with ``arc=True``, ``arc <cv> <detail>``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import dkim

SCRIPT = Path(__file__).resolve().parent / "dkimpy_verify.py"
SITE_PACKAGES = str(Path(dkim.__file__).resolve().parents[1])  # where dkimpy, dnspython and PyNaCl live


def verify(
    message: bytes, *, dns: str | None = None, keys: dict[str, str] | None = None, arc: bool = False
) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        if dns is not None:
            source = ["--dns", dns]
        else:
            path = Path(tmp) / "keys.json"
            path.write_text(json.dumps(keys or {}))  # public keys only
            source = ["--keys", str(path)]
        result = subprocess.run(
            [sys.executable, "-I", "-S", str(SCRIPT), SITE_PACKAGES, *source, *(["--arc"] if arc else [])],
            input=message,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


def verdicts(lines: list[str]) -> list[str]:
    """``["<a> <result>", ...]`` for the DKIM lines, sorted; ``["arc <cv>"]`` for the ARC line."""
    found = sorted(f"{line.split()[1]} {line.split()[4]}" for line in lines if line.startswith("dkim "))
    return found + [f"arc {line.split()[1]}" for line in lines if line.startswith("arc ")]
