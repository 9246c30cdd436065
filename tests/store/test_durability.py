"""A writer killed mid-transaction loses nothing it acknowledged (kill -9 during 1,000 appends).

The kill must land while appends are still coming: the writer reports each acknowledged append,
the test kills it once between 10 % and 90 % of them are acknowledged, and checks that the writer
had not finished. Then every acknowledged message must be readable, byte for byte, and the file
must pass SQLite's integrity check.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sealmail.store.mailbox import Mailbox

TARGET = 1000
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sealmail.store.mailbox import Mailbox
    path, round_, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    key = bytes.fromhex(sys.stdin.readline().strip())
    box = Mailbox("d" * 24, Path(path), key)
    for n in range(target):
        raw = (f"Subject: append {round_}-{n}\\r\\nMessage-ID: <a{round_}-{n}@x>\\r\\n\\r\\n" + "line\\r\\n" * 40).encode()
        uid = box.append("INBOX", raw).uid
        print(uid, n, flush=True)  # acknowledged: committed before this line is written
    print("done", flush=True)
    """
)


def _raw(round_: int, n: int) -> bytes:
    return (f"Subject: append {round_}-{n}\r\nMessage-ID: <a{round_}-{n}@x>\r\n\r\n" + "line\r\n" * 40).encode()


@pytest.mark.slow
def test_kill_9_during_appends_keeps_every_acknowledged_uid(tmp_path) -> None:
    key = os.urandom(32)
    path = tmp_path / "box.sqlite"
    Mailbox("d" * 24, path, key).close()
    # (uid, the message the writer was told is stored): a list, as a lost UID is handed out again
    acknowledged: list[tuple[int, bytes]] = []
    for round_, kill_at in enumerate((TARGET // 10 + 50, TARGET // 2, TARGET * 9 // 10 - 50)):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(round_), str(TARGET)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        proc.stdin.write(key.hex() + "\n")
        proc.stdin.flush()
        lines: list[str] = []
        for line in proc.stdout:  # the writer's progress, read as it comes
            lines.append(line)
            if len(lines) == kill_at:
                break
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.stdin.close()
        # Read on through the same buffered reader: communicate() would read the pipe underneath it
        # and miss reports already buffered here (counted as committed but never acknowledged).
        lines += proc.stdout.read().splitlines()
        proc.stdout.close()
        proc.wait(timeout=30)
        assert still_running, "the writer exited before the kill"
        assert proc.returncode == -signal.SIGKILL
        assert "done" not in (line.strip() for line in lines), "the writer finished before the kill: nothing in flight"
        acked = [tuple(map(int, line.split())) for line in lines]
        assert kill_at <= len(acked) < TARGET, f"round {round_}: {len(acked)} of {TARGET} acknowledged at the kill"
        acknowledged += [(uid, _raw(round_, n)) for uid, n in acked]
    box = Mailbox("d" * 24, path, key)
    try:
        assert box.integrity_check() == "ok"
        stored = {info.uid: info for info in box.messages("INBOX")}
        uids = [uid for uid, _ in acknowledged]
        reused = sorted(uid for uid, times in collections.Counter(uids).items() if times > 1)
        assert not reused, f"UIDs acknowledged twice (the first was lost at a kill): {reused[:20]}"
        missing = sorted(set(uids) - set(stored))
        assert not missing, f"acknowledged but lost after kill -9: UIDs {missing[:20]}"
        for uid, raw in acknowledged:
            assert box.raw(stored[uid].body_id) == raw, f"UID {uid} does not read back as acknowledged"
        assert len(stored) - len(uids) <= 3  # at most the in-flight append per kill
        for uid in set(stored) - set(uids):  # committed, the kill beat its report: whole, too
            assert box.raw(stored[uid].body_id).startswith(b"Subject: append ")
        assert box.status("INBOX").uidnext == max(stored) + 1
    finally:
        box.close()
