"""IMAP fixtures: a real server on loopback ports with test TLS, a real Redis, and clients for it.

The server runs in its own thread with its own event loop, so tests can drive it with blocking
clients (imaplib, the raw line client below, real programs in subprocesses) as users would.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from storekit import StoreThread, remote_mode

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore
from sealmail.tls.devca import ensure_dev_certificates

from support import ComponentThread

ADDRESS = "rémi@example.test"
ASCII_ADDRESS = "alice@example.test"


@dataclass
class Account:
    address: str
    password: str
    mailbox_id: str
    public_key: bytes


@dataclass
class Imap:
    settings: Any
    config: SQLiteConfigStore
    server: ComponentThread
    tls: ssl.SSLContext
    ca_cert: Path
    redis_url: str
    accounts: dict[str, Account]

    @property
    def port(self) -> int:
        return self.server.ports["imaps"]

    @property
    def plain_port(self) -> int:
        return self.server.ports["imap"]

    def account(self, address: str = ADDRESS) -> Account:
        return self.accounts[address]

    def client(self, address: str | None = ADDRESS) -> imaplib.IMAP4_SSL:
        """An imaplib client over TLS, logged in unless ``address`` is None."""
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.tls, timeout=30)
        if address is not None:
            acct = self.accounts[address]
            client._encoding = "utf-8"  # imaplib sends the name as it is: quote it, as mail clients do
            client.login(f'"{acct.address}"', acct.password)
        return client

    def restart(self) -> None:
        """Stop the IMAP server and start a fresh one on the same data (new ports, empty caches)."""
        settings = self.server.settings
        self.server.stop()
        self.server = ComponentThread("imap", settings)

    def raw(self, *, tls: bool = True) -> RawClient:
        return RawClient("127.0.0.1", self.port if tls else self.plain_port, self.tls if tls else None)

    def deliver(self, raw: bytes, address: str = ADDRESS, folder: str = "INBOX") -> None:
        """Mail arriving through the MX: sealed into the spool by another process's store, announced on Redis
        (``folder``: where the drain files it, as the MX's verdict says: INBOX, or Junk)."""
        acct = self.accounts[address]

        async def go() -> None:
            bus = ev.RedisBus(self.redis_url)
            store = MailStore(self.settings.data_dir, bus)
            try:
                await store.deliver_async(acct.mailbox_id, acct.public_key, raw, folder=folder)
            finally:
                await store.close()
                await bus.close()

        asyncio.run(go())


class RawClient:
    """A line client for exact responses: send a line, read until the tagged answer (literals kept inline)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        sock = socket.create_connection((host, port), timeout=10)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.file = self.sock.makefile("rb")
        self.greeting = self.readline()

    def readline(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        return line

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def response(self) -> bytes:
        """One response line with any literals it announces, as one bytes value."""
        out = bytearray(self.readline())
        while out.endswith(b"}\r\n"):
            start = out.rfind(b"{")
            size = int(out[start + 1 : -3].decode().rstrip("+"))
            out += self.file.read(size)
            out += self.readline()
        return bytes(out)

    def command(self, line: str | bytes, tag: str | None = None) -> list[bytes]:
        """Send ``line`` (CRLF added) and return every response up to and including the tagged one."""
        data = line.encode() if isinstance(line, str) else line
        tag = tag or data.split(b" ", 1)[0].decode()
        self.send(data + b"\r\n")
        return self.until(tag)

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.response()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def login(self, account: Account) -> None:
        lines = self.command(b'l1 LOGIN "' + account.address.encode() + b'" "' + account.password.encode() + b'"')
        assert lines[-1].startswith(b"l1 OK"), lines

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def make_account(config: SQLiteConfigStore, settings: Any, address: str) -> Account:
    with contextlib.suppress(Exception):
        domains.add_domain(config, address.split("@")[1])
    alias = aliases.add_alias(config, address)
    password = credentials.set_password(config, settings, address)
    credential = config.get_credential(alias.id)
    assert credential is not None
    assert credential.mailbox_id is not None
    return Account(address, password, credential.mailbox_id, credential.public_key)


@contextlib.contextmanager
def selected_after_appends(
    imap: Imap, mails: list[tuple[bytes, str | None]], address: str = ASCII_ADDRESS
) -> Iterator[RawClient]:
    """``mails`` (message, internal date or None) appended with imaplib, then a raw client with INBOX selected."""
    client = imap.client(address)
    for raw_message, when in mails:
        typ, data = client.append("INBOX", None, f'"{when}"' if when else None, raw_message)
        assert typ == "OK", data
    client.logout()
    raw = imap.raw()
    raw.login(imap.account(address))
    try:
        assert raw.command("s SELECT INBOX")[-1].startswith(b"s OK")
        yield raw
    finally:
        raw.close()


@pytest.fixture
def raw(imap) -> Iterator[RawClient]:
    """A raw client signed in to the first account, closed even when the test fails (a test file may
    define its own, e.g. with messages appended first)."""
    client = imap.raw()
    client.login(imap.account())
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def imap_settings(settings, tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls")
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "imaps_port": 0,
            "imap_port": 0,
            "bind_addresses": ["127.0.0.1"],
        }
    )


@pytest.fixture
def imap(request, imap_settings, redis_url, tmp_path):
    """A running IMAP server with two accounts (one with a non-ASCII address); see ``Imap``."""
    redis.Redis.from_url(redis_url).flushdb()  # login throttling state of earlier tests
    overrides = getattr(request, "param", None) or {}
    settings = imap_settings.model_copy(update={"redis_url": redis_url, **overrides})
    settings = type(settings).model_validate(settings.model_dump())  # SecretStr from the plain URL
    config = SQLiteConfigStore(settings.config_db_path)
    accounts = {a: make_account(config, settings, a) for a in (ADDRESS, ASCII_ADDRESS)}
    # SEALMAIL_TEST_STORE=remote: the same tests with the mailboxes behind a store component
    store = StoreThread(settings, tmp_path / "tls") if remote_mode() else None
    server = ComponentThread("imap", store.client_settings(settings) if store else settings)
    tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
    running = Imap(settings, config, server, tls, tmp_path / "tls" / "ca.pem", redis_url, accounts)
    try:
        yield running
    finally:
        running.server.stop()  # the one running now: a test may have restarted it
        if store is not None:
            store.stop()
        config.close()
