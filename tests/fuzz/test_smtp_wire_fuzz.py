"""Wire target: fuzzed command lines to the real MX over a plain socket (RFC 5321 §4.1).

Every line gets a reply with a three-digit code; a syntax error is 5xx (§4.2.2: 500/501/5xx),
never aiosmtpd's "500 Error: (SomeException) ..." that means an exception escaped a handler; and
after any of them (but QUIT and the error limit, which close with 221/421) the session still
answers RSET with 250.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .fuzzkit import WIRE_DEADLINE, fuzz, lines_from
from .test_smtp_parsers_fuzz import ADDRESS_WORDS

WORDS = [
    "EHLO ", "HELO ", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "VRFY ", "EXPN ", "HELP", "AUTH ", "BDAT ",
    "STARTTLS", "<demo@example.test>", "<>", "<postmaster>", "<\"quoted\"@example.test>", "<@a.test:b@example.test>",
    " SIZE=", " SIZE=99999999999999999999", " BODY=8BITMIME", " SMTPUTF8", " NOTIFY=SUCCESS", " RET=FULL", " AUTH=<>",
    *ADDRESS_WORDS,
]  # fmt: skip
_REPLY = re.compile(rb"^(\d{3})([ -])")
_LEAKED = re.compile(rb"^5\d\d [\d.]* ?\(\w+(Error|Exception)\w*\)")
_SKIP = (b"QUIT", b"DATA", b"STARTTLS", b"BDAT", b"AUTH")


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: Any = None
        self.file: Any = None

    def reply(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            assert _REPLY.match(line), line
            lines.append(line)
            if line[3:4] == b" ":
                return lines

    def open(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.file = self.sock.makefile("rb")
            assert self.reply()[-1].startswith(b"220")
            self.sock.sendall(b"EHLO fuzz.example.org\r\n")
            assert self.reply()[-1].startswith(b"250")

    def command(self, line: bytes) -> list[bytes]:
        self.open()
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        if self.sock is not None:
            self.file.close()
            self.sock.close()
            self.sock = self.file = None


@pytest.fixture
def client(mx_server):
    made = Client(mx_server)
    yield made
    made.close()


@fuzz(deadline=WIRE_DEADLINE)
@given(st.one_of(st.binary(max_size=100), lines_from(WORDS, max_size=8)))
def test_fuzzed_lines_get_a_reply_and_the_session_goes_on(client, data: bytes) -> None:
    line = data.replace(b"\r", b" ").replace(b"\n", b" ")
    if line.lstrip().split(b" ", 1)[0].upper() in _SKIP:
        line = b"X" + line
    replies = client.command(line)
    last = replies[-1]
    assert not any(_LEAKED.match(r) for r in replies), (line, replies)
    assert last[:1] in (b"2", b"3", b"4", b"5"), (line, replies)
    if last.startswith(b"421"):
        client.close()  # too many errors: the server closes (RFC 5321 §3.8), as it should
        return
    after = client.command(b"RSET")
    if after[-1].startswith(b"421"):
        client.close()
        return
    assert after[-1].startswith(b"250"), (line, replies, after)
