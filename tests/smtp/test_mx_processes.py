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

from sealmail.services import aliases, credentials, domains
from sealmail.smtp.mx import MxComponent
from sealmail.store.mailstore import MailStore

from dnsserver import DnsServer
from mailgen import message


@pytest.fixture
async def mx2(settings, config, tmp_path):
    dnsd = DnsServer(tmp_path)
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.start()
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "bind_address": "127.0.0.1",
            "hostname": "mx.example.test",
            "mx_max_connections_per_ip": 3,
            "mx_processes": 2,
            "mx_auth_workers": 0,
        }
    )
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    password = credentials.set_password(config, settings, "demo@example.test")
    component = MxComponent(settings)
    port = (await component.start())["mx"]
    component.port, component.password = port, password  # type: ignore[attr-defined]
    yield component
    await component.stop()
    dnsd.stop()


def _children(component: MxComponent) -> list:
    return list(component._processes._children)


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


async def test_connections_are_spread_and_the_per_ip_limit_is_exact_across_processes(mx2) -> None:
    """Three connections from one address (the limit) over two processes; the fourth gets 421 4.7.0."""
    opened = [await asyncio.to_thread(_greet, mx2.port) for _ in range(3)]
    try:
        assert [greeting[:3] for _, greeting in opened] == [b"220"] * 3
        assert sorted(child.load for child in _children(mx2)) == [1, 2]  # least loaded gets the next one
        extra, refused = await asyncio.to_thread(_greet, mx2.port)
        extra.close()
        assert refused.startswith(b"421 4.7.0")
        # A session that ends frees its slot in the parent: the next connection is served.
        opened.pop()[0].close()
        await _eventually(lambda: mx2._book.total == 2)
        again, greeting = await asyncio.to_thread(_greet, mx2.port)
        again.close()
        assert greeting.startswith(b"220")
    finally:
        for sock, _ in opened:
            sock.close()
    await _eventually(lambda: mx2._book.total == 0 and not mx2._book.per_ip)


async def test_a_killed_session_process_frees_its_slots_and_is_replaced(mx2, settings) -> None:
    first, second = _children(mx2)
    held = [await asyncio.to_thread(_greet, mx2.port) for _ in range(2)]  # one on each process
    assert first.load == second.load == 1
    os.kill(first.proc.pid, signal.SIGKILL)
    # Its connection is gone, its slot is free; the other process's session still works.
    await _eventually(lambda: mx2._book.total == 1)
    survivor = next(sock for sock, _ in held if _is_open(sock))
    survivor.sendall(b"NOOP\r\n")
    assert survivor.makefile("rb").readline().startswith(b"250")
    await _eventually(lambda: all(c.alive and c.ready.done() for c in _children(mx2)) and first not in _children(mx2))
    for n in range(4):  # every process, the new one included, delivers
        await asyncio.to_thread(_send, mx2.port, f"after the kill {n}")
    for sock, _ in held:
        sock.close()
    store = MailStore(settings.data_dir)
    try:
        mailbox_id = _mailbox_id(settings)
        assert store.spool(mailbox_id).count() == 4
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


def _mailbox_id(settings) -> str:
    from sealmail.config.sqlite import SQLiteConfigStore

    config = SQLiteConfigStore(settings.config_db_path)
    try:
        alias = config.find_alias("example.test", "exact", "demo")
        return config.get_credential(alias.id).mailbox_id
    finally:
        config.close()


async def test_stopping_ends_every_session_process(mx2) -> None:
    children = _children(mx2)
    sock, greeting = await asyncio.to_thread(_greet, mx2.port)
    assert greeting.startswith(b"220")
    await mx2.stop()
    assert all(child.proc.returncode is not None for child in children)
    assert sock.makefile("rb").readline() == b""  # its session was closed, not left hanging
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", mx2.port), timeout=2).close()
