"""Several MX session processes behind one listening socket (``mx_processes``).

The parent accepts and counts; each connection is served by one session process. What must hold:
connection limits are exact across processes (RFC 5321 §4.5.3.2 lets a server refuse with 421, not
lose count), a session process that dies frees its slots and is replaced, and others keep serving.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket

import pytest

from sealmail.store.mailstore import MailStore

from mailgen import message

# Every test here needs two session processes (the ``mx`` fixture of conftest.py).
pytestmark = pytest.mark.parametrize("mx", [2], indirect=True)


def _children(mx) -> list:
    return list(mx.component._processes._children)


def _greet(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, sock.makefile("rb").readline()


async def _eventually(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.org")
        client.sendmail("someone@example.org", ["demo@example.test"], message(subject=subject))


async def test_connections_are_spread_and_the_per_ip_limit_is_exact_across_processes(mx) -> None:
    """Three connections from one address (the limit) over two processes; the fourth gets 421 4.7.0."""
    opened = [await asyncio.to_thread(_greet, mx.port) for _ in range(3)]
    try:
        assert [greeting[:3] for _, greeting in opened] == [b"220"] * 3
        assert sorted(child.load for child in _children(mx)) == [1, 2]  # least loaded gets the next one
        extra, refused = await asyncio.to_thread(_greet, mx.port)
        extra.close()
        assert refused.startswith(b"421 4.7.0")
        # A session that ends frees its slot in the parent: the next connection is served.
        opened.pop()[0].close()
        await _eventually(lambda: mx.component._book.total == 2)
        again, greeting = await asyncio.to_thread(_greet, mx.port)
        again.close()
        assert greeting.startswith(b"220")
    finally:
        for sock, _ in opened:
            sock.close()
    await _eventually(lambda: mx.component._book.total == 0 and not mx.component._book.per_ip)


async def test_a_killed_session_process_frees_its_slots_and_is_replaced(mx, config) -> None:
    first, second = _children(mx)
    held = [await asyncio.to_thread(_greet, mx.port) for _ in range(2)]  # one on each process
    assert first.load == second.load == 1
    os.kill(first.proc.pid, signal.SIGKILL)
    # Its connection is gone, its slot is free; the other process's session still works.
    await _eventually(lambda: mx.component._book.total == 1)
    survivor = next(sock for sock, _ in held if _is_open(sock))
    survivor.sendall(b"NOOP\r\n")
    assert survivor.makefile("rb").readline().startswith(b"250")
    await _eventually(lambda: all(c.alive and c.ready.done() for c in _children(mx)) and first not in _children(mx))
    for n in range(4):  # every process, the new one included, delivers
        await asyncio.to_thread(_send, mx.port, f"after the kill {n}")
    for sock, _ in held:
        sock.close()
    store = MailStore(mx.settings.data_dir)
    try:
        alias = config.find_alias("example.test", "exact", "demo")
        assert store.spool(config.get_credential(alias.id).mailbox_id).count() == 4
    finally:
        await store.close()


def _is_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


async def test_stopping_ends_every_session_process(mx) -> None:
    children = _children(mx)
    sock, greeting = await asyncio.to_thread(_greet, mx.port)
    assert greeting.startswith(b"220")
    await mx.component.stop()
    assert all(child.proc.returncode is not None for child in children)
    assert sock.makefile("rb").readline() == b""  # its session was closed, not left hanging
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", mx.port), timeout=2).close()
