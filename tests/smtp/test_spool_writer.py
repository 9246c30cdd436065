"""The MX's one spool writer: session processes hand it sealed records, it commits them together.

RFC 5321 §4.1.1.4 / §6.1: a ``250`` after the final dot means the message is the server's
responsibility, so each handed-over record must be committed (fsynced) before its append returns,
whichever session process sent it and however many wait for the same spool; one writer for a hot
mailbox makes one fsync cover every record waiting, instead of each process taking turns.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading

from sealmail.smtp.spoolwriter import SpoolHandoff, SpoolWriteError, SpoolWriter
from sealmail.store.mailstore import MailStore

MAILBOX = "b" * 24


async def _pair(writer: SpoolWriter, limit: int = 1 << 20) -> SpoolHandoff:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    writer.attach(ours)
    handoff = SpoolHandoff(theirs, limit)
    await handoff.start()
    return handoff


async def test_records_from_several_processes_share_fsyncs_and_each_is_on_disk_before_its_append_returns(
    tmp_path,
) -> None:
    store = MailStore(tmp_path)
    writer = SpoolWriter(store)
    clients = [await _pair(writer), await _pair(writer)]  # two session processes
    path = store.spool_path(MAILBOX)
    seen: dict[int, bytes] = {}
    problems: list[str] = []
    lock = threading.Lock()

    def sender(client: SpoolHandoff, name: str) -> None:
        check = None
        for n in range(25):
            record = f"{name}:{n}".encode() * 20
            seq = client.append(MAILBOX, record)
            check = check or sqlite3.connect(path)  # another connection, as after a crash: is it there?
            row = check.execute("SELECT sealed FROM spool WHERE seq = ?", (seq,)).fetchone()
            if row is None or row[0] != record:
                problems.append(f"{name}:{n} returned {seq} before it was committed")
            with lock:
                seen[seq] = record
        if check is not None:
            check.close()

    threads = [threading.Thread(target=sender, args=(clients[i % 2], f"p{i % 2}t{i}"), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(1200):  # the writer commits on this loop's executor: do not fill it with joins
        if not any(thread.is_alive() for thread in threads):
            break
        await asyncio.sleep(0.05)
    assert not problems, problems[:5]
    assert len(seen) == 8 * 25, "every record got its own sequence number"
    assert writer.commits < 8 * 25, "records waiting together did not share a commit"
    assert store.spool(MAILBOX).count() == 8 * 25
    for client in clients:
        await client.close()
    await writer.close()
    store.close_spools()


async def test_a_record_the_writer_cannot_store_fails_its_append_and_nothing_else(tmp_path) -> None:
    """A spool that cannot be written answers that request with an error (the MX says ``451``);
    the same writer goes on storing for other mailboxes."""
    store = MailStore(tmp_path)
    writer = SpoolWriter(store)
    client = await _pair(writer)
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / ("c" * 24 + ".sqlite")).mkdir()  # not a database: opening it fails
    bad = asyncio.to_thread(client.append, "c" * 24, b"x" * 10)
    good = asyncio.to_thread(client.append, MAILBOX, b"y" * 10)
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], SpoolWriteError), results[0]
    assert results[1] == 1
    await client.close()
    await writer.close()


async def test_when_the_writer_is_gone_appends_fail_instead_of_waiting(tmp_path) -> None:
    store = MailStore(tmp_path)
    writer = SpoolWriter(store)
    client = await _pair(writer)
    await writer.close()  # the accepting process stopped: its end of the socket is closed
    for _ in range(100):
        if client._broken:
            break
        await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(asyncio.to_thread(client.append, MAILBOX, b"z"), 10)
    except SpoolWriteError:
        pass
    else:
        raise AssertionError("an append succeeded with no writer")
    await client.close()
