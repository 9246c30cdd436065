"""The sealed spool: durable appends by the MX, exactly-once drains by whoever holds the key."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sealmail.crypto import keys
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import MailStore

from mailgen import message

DRAINER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from sealmail.store.mailbox import Mailbox
    from sealmail.store.spool import Spool
    args = json.loads(sys.stdin.readline())
    box = Mailbox(args["id"], Path(args["path"]), bytes.fromhex(args["key"]))
    print("ready", flush=True)
    result = box.drain(Spool(Path(args["spool"])), bytes.fromhex(args["private"]))
    print(result.drained, flush=True)
    box.close()
    """
)


@pytest.fixture
def sealed_spool(tmp_path):
    """A mailbox and a spool holding ``n`` sealed messages; returns a helper namespace."""
    found, public = keys.new_secrets()
    store = MailStore(tmp_path)
    mailbox_id = "a" * 24
    store.create(mailbox_id, found.mailbox_key)

    class Fixture:
        pass

    fx = Fixture()
    fx.store, fx.id, fx.secrets, fx.public = store, mailbox_id, found, public
    fx.args = json.dumps(
        {
            "id": mailbox_id,
            "path": str(store.mailbox_path(mailbox_id)),
            "spool": str(store.spool_path(mailbox_id)),
            "key": found.mailbox_key.hex(),
            "private": found.private_key.hex(),
        }
    )

    def fill(n: int) -> None:
        for i in range(n):
            store.deliver(mailbox_id, public, message(i))

    def inbox_ids() -> list[int]:
        box = Mailbox(mailbox_id, store.mailbox_path(mailbox_id), found.mailbox_key)
        try:
            ids = []
            for info in box.messages("INBOX"):
                match = re.search(rb"Message-ID: <m(\d+)@", box.header(info.body_id))
                ids.append(int(match.group(1)))
            assert box.integrity_check() == "ok"
            return ids
        finally:
            box.close()

    fx.fill, fx.inbox_ids = fill, inbox_ids
    yield fx
    store.spool(mailbox_id).close()


def _drainer(fx) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", DRAINER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(fx.args + "\n")
    proc.stdin.flush()
    return proc


def test_drain_moves_mail_into_inbox_in_arrival_order(sealed_spool) -> None:
    fx = sealed_spool
    fx.fill(25)
    box = fx.store.open_sync(fx.id, fx.secrets.mailbox_key)
    try:
        result = box.drain(fx.store.spool(fx.id), fx.secrets.private_key)
        assert (result.drained, result.failed) == (25, ())
        assert box.drain(fx.store.spool(fx.id), fx.secrets.private_key).drained == 0
    finally:
        box.close()
    assert fx.inbox_ids() == list(range(25))
    assert fx.store.spool(fx.id).count() == 0


def test_internal_date_is_the_sealed_arrival_time(sealed_spool) -> None:
    from datetime import UTC, datetime

    fx = sealed_spool
    when = datetime(2026, 3, 1, 9, 30, 15, 123000, tzinfo=UTC)
    fx.store.deliver(fx.id, fx.public, message(1), when)
    box = fx.store.open_sync(fx.id, fx.secrets.mailbox_key)
    try:
        box.drain(fx.store.spool(fx.id), fx.secrets.private_key)
        assert box.messages("INBOX")[0].internal_date == when
    finally:
        box.close()


def test_a_record_that_does_not_open_is_kept_and_does_not_block_the_rest(sealed_spool) -> None:
    fx = sealed_spool
    fx.fill(2)
    fx.store.spool(fx.id).append(b"\x01" + b"garbage" * 20)
    fx.store.deliver(fx.id, fx.public, message(2))
    box = fx.store.open_sync(fx.id, fx.secrets.mailbox_key)
    try:
        result = box.drain(fx.store.spool(fx.id), fx.secrets.private_key)
    finally:
        box.close()
    assert result.drained == 3
    assert result.failed == (3,)
    assert fx.inbox_ids() == [0, 1, 2]
    assert fx.store.spool(fx.id).count() == 1  # kept for inspection, never retried


def test_concurrent_drains_deliver_each_message_once(sealed_spool) -> None:
    fx = sealed_spool
    fx.fill(150)
    procs = [_drainer(fx) for _ in range(3)]
    drained = [int(p.communicate(timeout=120)[0].split()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(drained) == 150
    assert fx.inbox_ids() == list(range(150))


@pytest.mark.slow
def test_kill_9_at_any_point_of_a_drain_loses_and_duplicates_nothing(sealed_spool) -> None:
    """Kill the draining process at random moments, drain again each time: exactly once, in order."""
    fx = sealed_spool
    total = 600
    fx.fill(total)
    rng = random.Random(20261123)
    kills = 0
    for _ in range(60):
        if fx.store.spool(fx.id).count() == 0:
            break
        proc = _drainer(fx)
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        ids = fx.inbox_ids()
        assert ids == list(range(len(ids))), "a message was duplicated or reordered"
    final = _drainer(fx)
    final.communicate(timeout=120)
    assert kills >= 3, "the drainer was never killed mid-drain; the test proved nothing"
    assert fx.inbox_ids() == list(range(total))
    assert fx.store.spool(fx.id).count() == 0


def test_spool_appends_are_fsynced_before_they_return(sealed_spool) -> None:
    """FULL synchronous: the record is in the database file or its WAL when append returns."""
    fx = sealed_spool
    spool = fx.store.spool(fx.id)
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    seq = spool.append(b"\x01" * 80)
    reader = __import__("sqlite3").connect(fx.store.spool_path(fx.id))
    assert reader.execute("SELECT count(*) FROM spool WHERE seq = ?", (seq,)).fetchone() == (1,)


def test_concurrent_appends_share_commits_and_each_gets_its_own_records(tmp_path) -> None:
    """Group commit: writers that arrive together ride on one fsynced transaction; none returns
    before its records are committed, every record gets its own sequence number, in order per writer."""
    import threading

    from sealmail.store.spool import Spool

    spool = Spool(tmp_path / "spool.sqlite")
    results: dict[int, list[int]] = {}
    start = threading.Barrier(16)

    def writer(n: int) -> None:
        start.wait()
        results[n] = [spool.append(f"{n}:{i}".encode()) for i in range(20)]

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = [seq for mine in results.values() for seq in mine]
    assert len(set(seqs)) == 16 * 20
    assert all(mine == sorted(mine) for mine in results.values())
    assert spool.commits < 16 * 20  # some appends shared a commit
    other = Spool(tmp_path / "spool.sqlite")  # a second connection sees every record: they are on disk
    stored = dict(other.pending(0))
    assert {stored[seq] for seq in seqs} == {f"{n}:{i}".encode() for n in range(16) for i in range(20)}
    other.close()
    spool.close()


def test_a_failing_write_in_a_group_fails_alone(tmp_path) -> None:
    """A batch that fails is rolled back and its requests retried one by one: only the bad one fails."""
    import threading

    from sealmail.store.groupcommit import GroupCommit

    lock = threading.Lock()
    committed: list[str] = []

    def apply(batch: list[str]) -> list[str]:
        if "bad" in batch:
            raise ValueError("bad request")
        committed.extend(batch)
        return [f"ok:{r}" for r in batch]

    group: GroupCommit[str, str] = GroupCommit(lock, apply)
    with lock:  # hold the connection so the three queue up and go in one batch
        outcomes: dict[str, str] = {}

        def run(request: str) -> None:
            try:
                outcomes[request] = group.run(request)
            except ValueError as exc:
                outcomes[request] = f"error:{exc}"

        threads = [threading.Thread(target=run, args=(r,)) for r in ("a", "bad", "b")]
        for thread in threads:
            thread.start()
        while len(group._queue) < 3:
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    assert outcomes == {"a": "ok:a", "b": "ok:b", "bad": "error:bad request"}
    assert sorted(committed) == ["a", "b"]


def test_a_handed_over_entry_is_appended_once_even_after_its_drain(sealed_spool) -> None:
    """Issue 19 (exactly once): a sealed record handed over twice with one entry id — the first
    reply was lost, or the sender died before forgetting its copy — is in the mailbox once."""
    from datetime import UTC, datetime

    from sealmail.store.spool import seal_message

    fx = sealed_spool
    records = [b"".join(seal_message(fx.public, fx.id, message(i), datetime.now(UTC))) for i in range(3)]
    ids = [f"{i:020d}-{'ab' * 8}" for i in range(3)]
    first = [fx.store.deliver_sealed(fx.id, ids[i], records[i]) for i in range(3)]
    assert fx.store.deliver_sealed(fx.id, ids[1], records[1]) == first[1]  # a repeat: the first one's number
    assert fx.store.spool(fx.id).count() == 3
    box = fx.store.open_sync(fx.id, fx.secrets.mailbox_key)
    try:
        assert box.drain(fx.store.spool(fx.id), fx.secrets.private_key).drained == 3
        # the entry comes again after the drain emptied the spool: still nothing appended
        assert fx.store.deliver_sealed(fx.id, ids[0], records[0]) == first[0]
        assert fx.store.spool(fx.id).count() == 0
        assert box.drain(fx.store.spool(fx.id), fx.secrets.private_key).drained == 0
    finally:
        box.close()
    assert fx.inbox_ids() == [0, 1, 2]


def test_spool_size_is_kept_in_the_file_for_every_writer_and_never_waits_for_a_commit(tmp_path) -> None:
    """RFC 5321 §4.2.2 / RFC 3463 5.2.2 (``552 5.2.2`` Mailbox full, answered at RCPT): the MX asks
    every RCPT how many sealed octets wait. The total is kept in the spool file itself, updated in
    the same transaction as each append and delete (whichever process or connection made them), so
    the answer is one row however long the spool is, and it is read on a connection of its own: a
    commit in flight (its fsync) does not hold up a RCPT for the same mailbox."""
    import sqlite3
    import threading

    from sealmail.store.spool import Spool

    path = tmp_path / "spool.sqlite"
    with sqlite3.connect(path) as old:  # a spool made before the total was kept: counted once on open
        old.execute("CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, sealed BLOB NOT NULL)")
        old.execute("INSERT INTO spool (sealed) VALUES (?)", (b"x" * 100,))
    old.close()
    one, two = Spool(path), Spool(path)
    assert one.size() == two.size() == 100
    seqs = one.append_many([b"a" * 10, b"b" * 20])
    two.append(b"c" * 30)
    assert one.size() == two.size() == 160
    two.delete_through(seqs[0])  # the old record and the first new one are drained
    assert one.size() == two.size() == 50
    with one._lock:  # one's writer is mid-commit: its size() still answers at once
        answered = threading.Event()
        reader = threading.Thread(target=lambda: (one.size(), answered.set()))
        reader.start()
        assert answered.wait(5), "size() waited for the writer"
        reader.join()
    one.close()
    two.close()
