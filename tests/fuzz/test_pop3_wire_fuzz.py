"""Wire target: fuzzed command lines to the real POP3 server over TLS, in both states.

RFC 1939 §3: every command gets ``+OK`` or ``-ERR`` (a multi-line ``+OK`` ends with its "." line);
never ``-ERR [SYS/TEMP] Internal error`` (an exception inside the server); and the session goes on:
a NOOP (TRANSACTION) or CAPA (AUTHORIZATION) right after is answered.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .fuzzkit import WIRE_DEADLINE, fuzz, lines_from

WORDS = [
    "USER ", "PASS ", "APOP ", "AUTH ", "AUTH PLAIN ", "PLAIN", "LOGIN", "STAT", "LIST", "LIST ", "RETR ", "DELE ",
    "NOOP", "RSET", "TOP ", "UIDL", "UIDL ", "CAPA", "UTF8", "STLS", " ", "  ", "\t", "0", "1", "2", "3", "-1", "+1",
    "4294967296", "99999999999", "１", "٣", "=", "*", "AGZ1enoAeA==", "\x00", "é", "\xff",
]  # fmt: skip
# Commands that end the session or change the transport are left to the regular tests.
_SKIP = (b"QUIT", b"STLS")
MULTILINE = (b"CAPA", b"LIST", b"UIDL", b"RETR", b"TOP", b"AUTH")


class Client:
    def __init__(self, server: Any, context: ssl.SSLContext, login: bool) -> None:
        self.server, self.context, self.login = server, context, login
        self.sock: Any = None
        self.file: Any = None

    def open(self) -> None:
        if self.sock is not None:
            return
        raw = socket.create_connection(("127.0.0.1", self.server.ports["pop3s"]), timeout=10)
        self.sock = self.context.wrap_socket(raw, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        assert self.line().startswith(b"+OK")
        if self.login:
            acct = self.server.account
            assert self.command(f"USER {acct.address}".encode())[0].startswith(b"+OK")
            reply = self.command(f"PASS {acct.password}".encode())
            assert reply[0].startswith(b"+OK"), reply

    def line(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return line

    def command(self, line: bytes) -> list[bytes]:
        """Send a line; the status line, then the body of a multi-line +OK (to its "." line)."""
        self.open()
        self.sock.sendall(line + b"\r\n")
        status = self.line()
        if status.startswith(b"+ "):  # AUTH PLAIN without an initial response: cancel (RFC 5034 §4)
            self.sock.sendall(b"*\r\n")
            return [status, self.line()]
        out = [status]
        keyword = line.split(b" ", 1)[0].upper()
        words = line.split()
        single = keyword in (b"LIST", b"UIDL") and len(words) > 1
        if status.startswith(b"+OK") and keyword in MULTILINE and not single:
            while (body := self.line()) != b".\r\n":
                out.append(body)
            out.append(body)
        return out

    def close(self) -> None:
        if self.sock is not None:
            self.file.close()
            self.sock.close()
            self.sock = self.file = None


@pytest.fixture
def clients(pop3_server, client_tls):
    # The maildrop is locked by one session at a time (RFC 1939 §8): one signed-in client.
    made = {False: Client(pop3_server, client_tls, False), True: Client(pop3_server, client_tls, True)}
    yield made
    for client in made.values():
        client.close()


def _one_line(data: bytes) -> bytes:
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


@fuzz(deadline=WIRE_DEADLINE)
@given(st.one_of(st.binary(max_size=80), lines_from(WORDS, max_size=8)), st.booleans())
def test_fuzzed_lines_get_ok_or_err_and_the_session_goes_on(clients, data: bytes, login: bool) -> None:
    line = _one_line(data)
    if line.split(b" ", 1)[0].upper() in _SKIP:
        line = b"X" + line
    client = clients[login]
    replies = client.command(line)
    assert replies[0].startswith((b"+OK", b"-ERR", b"+ ")), (line, replies)
    # An exception inside the server is answered "[SYS/TEMP] Internal error" (or, at login, "Cannot open
    # the maildrop"); "[SYS/TEMP] Too many failed logins" is the limiter doing its job.
    assert not any(b"Internal error" in r or b"Cannot open" in r for r in replies), (line, replies)
    probe = b"NOOP" if login else b"CAPA"
    after = client.command(probe)
    assert after[0].startswith(b"+OK"), (line, replies, after)
