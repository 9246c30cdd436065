"""Servers for the wire targets: each is started once per target, and hypothesis sends its examples
through it (so the examples share one server, as the clients of a real one do)."""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.tls.devca import ensure_dev_certificates


@pytest.fixture
def certs(tmp_path: Path) -> Any:
    return ensure_dev_certificates(tmp_path / "tls")


@pytest.fixture
def client_tls(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_cert))


@pytest.fixture
def imap_server(settings, certs, redis_url) -> Iterator[Any]:
    """A real IMAP component on loopback (TLS), an account with three messages in INBOX."""
    from imap.conftest import make_account

    from mailgen import message
    from support import ComponentThread

    redis.Redis.from_url(redis_url).flushdb()
    settings = settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "imaps_port": 0,
            "imap_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "redis_url": redis_url,
        }
    )
    settings = type(settings).model_validate(settings.model_dump())
    config = SQLiteConfigStore(settings.config_db_path)
    account = make_account(config, settings, "fuzz@example.test")
    server = ComponentThread("imap", settings)
    server.account = account
    server.redis_url = redis_url
    server.messages = [message(i) for i in range(3)]
    try:
        yield server
    finally:
        server.stop()
        config.close()


@pytest.fixture
def pop3_server(settings, certs) -> Iterator[Any]:
    """A real POP3 server on loopback (POP3S), an account with two messages."""
    from mailgen import message
    from pop3kit import Running, deliver, make_account

    settings = settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "pop3s_port": 0,
            "pop3_port": 0,
            "bind_addresses": ["127.0.0.1"],
        }
    )
    account = make_account(settings, "fuzz@example.test")
    deliver(settings, account, message(1), message(2))
    running = Running(settings)
    running.account = account
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def managesieve_server(settings, certs) -> Iterator[Any]:
    """A real ManageSieve server on loopback (STARTTLS), an account without scripts."""
    from types import SimpleNamespace

    from managesievekit import Running
    from pop3kit import make_account

    settings = settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "managesieve_port": 0,
            "bind_addresses": ["127.0.0.1"],
        }
    )
    account = make_account(settings, "fuzz@example.test")
    running = Running(settings)
    try:
        yield SimpleNamespace(running=running, account=account)
    finally:
        running.stop()


@pytest.fixture
def mx_server(settings, certs, tmp_path) -> Iterator[Any]:
    """A real MX (one process) on loopback with a real, empty DNS, hosting example.test."""
    from sealmail.services import aliases, domains
    from sealmail.smtp.mx import MxComponent

    from dnsserver import DnsServer

    dnsd = DnsServer(tmp_path)
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.start()
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "hostname": "mx.example.test",
            "max_message_size": 10_000,
            "mx_processes": 1,
            "mx_auth_workers": 1,
        }
    )
    config = SQLiteConfigStore(settings.config_db_path)
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test", recipients=["https://hooks.example.test/demo"])
    config.close()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="mx-fuzz-loop", daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    component = MxComponent(settings)
    try:
        port = call(component.start())["mx"]
        yield port
    finally:
        try:
            call(component.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            dnsd.stop()


@pytest.fixture
def dav_server(tmp_path: Path) -> Iterator[Any]:
    dav_tests = str(Path(__file__).resolve().parents[1] / "dav")
    if dav_tests not in sys.path:
        sys.path.append(dav_tests)  # davserver.py lives with the DAV tests (pytest adds it only for them)
    from davserver import start_server

    yield from start_server(tmp_path)
