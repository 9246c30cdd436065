"""Wire target: fuzzed command lines to the real IMAP server over TLS, before and after login.

Every line gets its tagged answer — OK, NO or BAD (RFC 9051 §7.1), or ``* BAD`` when not even a
tag could be read — never ``NO [SERVERBUG]`` (an exception inside the server), and the connection
keeps serving: a NOOP right after is answered OK.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from sealmail.imap import parser as p

from .fuzzkit import WIRE_DEADLINE, fuzz, lines_from
from .test_imap_parser_fuzz import WORDS, commands

_END = re.compile(rb"^(\S+) (OK|NO|BAD)\b")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Client:
    """One connection, reopened (and logged in again when ``login``) whenever the server ends it."""

    def __init__(self, server: Any, login: bool) -> None:
        self.server = server
        self.login = login
        self.raw: Any = None
        self.tls = ssl.create_default_context(cafile=str(server.settings.tls_cert_file.parent / "ca.pem"))

    def connection(self) -> Any:
        from imap.conftest import RawClient

        if self.raw is None:
            self.raw = RawClient("127.0.0.1", self.server.ports["imaps"], self.tls)
            assert self.raw.greeting.startswith(b"* OK"), self.raw.greeting
            if self.login:
                redis.Redis.from_url(self.server.redis_url).flushdb()  # fuzzed LOGINs count as failures
                acct = self.server.account
                self.raw.login(acct)
                lines = self.raw.command(b"s SELECT INBOX")
                assert lines[-1].startswith(b"s OK"), lines
        return self.raw

    def exchange(self, line: bytes) -> list[bytes]:
        """Send one command line; every response up to its end (tagged, ``* BAD`` or ``* BYE``)."""
        raw = self.connection()
        raw.send(line + b"\r\n")
        responses = []
        while True:
            response = self.response()
            responses.append(response)
            if response.startswith(b"+"):
                raw.send(b"*\r\n")  # AUTHENTICATE / IDLE asked for more: cancel (RFC 9051 §6.2.2)
                continue
            if response.startswith(b"* BYE"):
                self.close()
                return responses
            if response.startswith(b"* BAD") or (_END.match(response) and not response.startswith(b"* ")):
                return responses

    def response(self) -> bytes:
        """One response line with the literals it announces (a line merely ending in "}" is no literal)."""
        out = bytearray(self.raw.readline())
        while match := _LITERAL.search(out):
            out += self.raw.file.read(int(match.group(1)))
            out += self.raw.readline()
        return bytes(out)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None


def _one_line(data: bytes) -> bytes:
    """One command line: no line ends inside, and no literal announced at its end (a client that
    announces one must send it; the literal paths have their own tests)."""
    line = data.replace(b"\r", b" ").replace(b"\n", b" ")
    if p.literal_announcement(line) is not None:
        line += b" x"
    return line


@pytest.fixture
def clients(imap_server):
    made = {False: Client(imap_server, login=False), True: Client(imap_server, login=True)}
    yield made
    for client in made.values():
        client.close()


@fuzz(deadline=WIRE_DEADLINE)
@given(
    st.one_of(
        st.binary(max_size=120),
        st.builds(lambda rest: b"f1 " + rest, lines_from(WORDS, max_size=16)),
        commands,
        st.builds(lambda rest: b"f2 UID " + rest, lines_from(WORDS, max_size=12)),
    ),
    st.booleans(),
)
def test_fuzzed_lines_get_an_answer_and_the_session_goes_on(clients, data: bytes, login: bool) -> None:
    client = clients[login]
    line = _one_line(data)
    responses = client.exchange(line)
    last = responses[-1]
    assert not any(b"[SERVERBUG]" in r for r in responses), (line, responses)
    if last.startswith(b"* BYE"):
        return  # LOGOUT, or the limit of invalid commands in a row: the server says so and closes
    assert last.startswith(b"* BAD") or _END.match(last), (line, responses)
    if not last.startswith(b"* BAD"):
        assert line.startswith(last.split(b" ", 1)[0]), (line, responses)  # the command's own tag
    after = client.exchange(b"z NOOP")
    if after[-1].startswith(b"* BYE"):
        # The fuzzed command logged out or closed the mailbox; the next example opens a new session.
        return
    assert after[-1].startswith(b"z OK"), (line, responses, after)
