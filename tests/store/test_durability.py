"""A writer killed mid-transaction loses nothing it acknowledged (kill -9 during 1,000 appends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sealmail.store.mailbox import Mailbox

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sealmail.store.mailbox import Mailbox
    path, key = sys.argv[1], bytes.fromhex(sys.stdin.readline().strip())
    box = Mailbox("d" * 24, Path(path), key)
    for n in range(1000):
        raw = (f"Subject: append {n}\\r\\nMessage-ID: <a{n}@x>\\r\\n\\r\\n" + "line\\r\\n" * 40).encode()
        uid = box.append("INBOX", raw).uid
        print(uid, flush=True)  # acknowledged: committed before this line is written
    """
)


@pytest.mark.slow
def test_kill_9_during_appends_keeps_every_acknowledged_uid(tmp_path) -> None:
    key = os.urandom(32)
    path = tmp_path / "box.sqlite"
    Mailbox("d" * 24, path, key).close()
    acknowledged: list[int] = []
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        proc.stdin.write(key.hex() + "\n")
        proc.stdin.flush()
        time.sleep(0.4 + 0.3 * round_)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged += [int(line) for line in out.split()]
    assert len(acknowledged) > 50, "nothing was acknowledged before the kill; the test proved nothing"
    box = Mailbox("d" * 24, path, key)
    try:
        assert box.integrity_check() == "ok"
        stored = set(box.uids("INBOX"))
        assert set(acknowledged) <= stored
        assert len(stored) - len(set(acknowledged)) <= 3  # at most the in-flight append per kill
        status = box.status("INBOX")
        assert status.uidnext == max(stored) + 1
    finally:
        box.close()
