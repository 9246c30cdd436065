"""Helpers for the POP3 tests: a real server on its own event-loop thread, accounts, delivery, clients.

Tests drive the server with blocking clients (poplib, fetchmail, getmail6) from the test thread.
"""

from __future__ import annotations

import poplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.pop3.server import Pop3Component
from sealmail.services import aliases, credentials, domains
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import MailStore

from support import ComponentThread

ADDRESS = "rémi@example.test"


@dataclass
class Account:
    address: str
    password: str
    mailbox_id: str
    public_key: bytes


class Running(ComponentThread):
    """The POP3 component on its own loop thread (settings with ports 0 on 127.0.0.1); ``server`` is
    that ``Pop3Component`` while it runs (its ``server``: the ``LineServer``)."""

    def __init__(self, settings: Any) -> None:
        super().__init__("pop3", settings)

    @property
    def server(self) -> Pop3Component:
        component = self.component
        assert isinstance(component, Pop3Component)
        assert component.server is not None, "the POP3 component has stopped"
        return component


def make_account(settings: Any, address: str = ADDRESS) -> Account:
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        domain = address.rpartition("@")[2]
        if not any(d.name == domain for d in domains.list_domains(store)):
            domains.add_domain(store, domain)
        alias = aliases.add_alias(store, address)
        password = credentials.set_password(store, settings, address)
        credential = store.get_credential(alias.id)
    finally:
        store.close()
    assert credential is not None
    assert credential.mailbox_id is not None
    assert credential.public_key is not None
    return Account(address, password, credential.mailbox_id, credential.public_key)


def deliver(settings: Any, account: Account, *messages: bytes) -> None:
    """Seal messages into the account's spool, as the MX does; the next login drains them."""
    store = MailStore(settings.data_dir)
    spool = store.spool(account.mailbox_id)
    try:
        for raw in messages:
            store.deliver(account.mailbox_id, account.public_key, raw)
    finally:
        spool.close()


def connect(running: Running, context: ssl.SSLContext) -> poplib.POP3_SSL:
    """A poplib client on the implicit-TLS port (RFC 8314), checking the certificate and its name."""
    return poplib.POP3_SSL("127.0.0.1", running.ports["pop3s"], context=context, timeout=30)


def login(running: Running, context: ssl.SSLContext, account: Account) -> poplib.POP3_SSL:
    client = connect(running, context)
    client.user(account.address)
    client.pass_(account.password)
    return client


class Wire:
    """Raw lines over a socket, for what poplib hides: exact replies, pipelining, malformed input."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    @classmethod
    def tls(cls, running: Running, context: ssl.SSLContext) -> Wire:
        raw = socket.create_connection(("127.0.0.1", running.ports["pop3s"]), timeout=30)
        return cls(context.wrap_socket(raw, server_hostname="localhost"))

    @classmethod
    def plain(cls, running: Running) -> Wire:
        return cls(socket.create_connection(("127.0.0.1", running.ports["pop3"]), timeout=30))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def cmd(self, text: str | bytes) -> bytes:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def multiline(self) -> list[bytes]:
        """The lines of a multi-line response up to the "." line, still byte-stuffed."""
        lines = []
        while (line := self.line()) != b".\r\n":
            assert line, "connection closed inside a multi-line response"
            lines.append(line)
        return lines

    def login(self, account: Account) -> bytes:
        assert self.cmd(f"USER {account.address}").startswith(b"+OK")
        return self.cmd(f"PASS {account.password}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def open_mailbox(settings: Any, account: Account) -> Mailbox:
    """A private handle on the account's mailbox, as another process would have (caller closes it)."""
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        unlocked = credentials.unlock(store, settings, account.address, account.password)
    finally:
        store.close()
    return MailStore(settings.data_dir).open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
