"""A component never leaves a core dump: its memory holds unwrapped mailbox keys and plaintext.

``sealmail serve`` sets its core size limit to zero itself (the units also say ``LimitCORE=0``), so
even started from a shell that allows core dumps, neither it nor the processes it starts (the MX's
session processes) could write one.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
from pathlib import Path

from support import wait_for


def _core_limit(pid: int) -> tuple[str, str]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft, hard = re.search(r"^Max core file size\s+(\S+)\s+(\S+)", limits, re.MULTILINE).groups()
    return soft, hard


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _allow_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_serve_sets_the_core_limit_to_zero_for_itself_and_its_children(sealmail_bin, clean_env, settings) -> None:
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PROCESSES": "2",
    }
    ready = settings.run_dir / "mx.json"
    proc = subprocess.Popen(
        [sealmail_bin, "serve", "mx"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_allow_core_dumps,  # noqa: PLW1509 - the shell a careless admin starts it from
    )
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60, what="mx.json")
        assert proc.poll() is None, "the MX did not start"
        json.loads(ready.read_text())
        children = _children(proc.pid)
        assert len(children) == 2, children  # the two MX session processes
        for pid in (proc.pid, *children):
            assert _core_limit(pid) == ("0", "0"), pid
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
