"""Fuzz targets: the ManageSieve grammar (managesieve/parser.py, wire.py) and the real server over TLS.

RFC 5804 §2: every command is answered ``OK``, ``NO`` or ``BYE``, never an internal error; after
anything but ``BYE`` the session goes on. A parse either gives a command or a ``ParseError``, and
every string the server writes reads back as the same string.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sealmail.managesieve import parser as p
from sealmail.managesieve import wire

from .fuzzkit import WIRE_DEADLINE, fuzz, lines_from

WORDS = [
    "CAPABILITY", "NOOP", "NOOP ", "AUTHENTICATE ", '"PLAIN"', '"plain"', '"CRAM-MD5"', "HAVESPACE ", "PUTSCRIPT ",
    "CHECKSCRIPT ", "LISTSCRIPTS", "SETACTIVE ", "GETSCRIPT ", "DELETESCRIPT ", "RENAMESCRIPT ", '"a"', '""',
    '"*"', '"keep;"', '"stop;"', '"require \\"x\\";"', " ", "  ", "\t", '"', "\\", "0", "12", "4294967296", "é",
    "\x00", "\xff", "(", ")", "}", "+", "{", "{1+}", "{0}", '"' + base64.b64encode(b"\0other@example.test\0x").decode() + '"',
]  # fmt: skip
# Commands that end the session, change the transport or the state are left to the regular tests.
_SKIP = (b"LOGOUT", b"STARTTLS", b"UNAUTHENTICATE")


def _feed(pieces: list[tuple[bytes, bytes]]) -> p.Command:
    """Lines, each followed by the octets of the literal it announced (bounded by what was drawn)."""
    reader = p.CommandParser()
    for line, octets in pieces:
        head = reader.feed(line + b"\r\n")
        if head is None:
            return reader.command()
        reader.literal(octets[: head.size].ljust(head.size, b"x"))
    return reader.command()


@fuzz()
@given(
    st.lists(
        st.tuples(st.one_of(st.binary(max_size=60), lines_from(WORDS, max_size=8)), st.binary(max_size=40)),
        min_size=1,
        max_size=4,
    )
)
def test_any_lines_parse_to_a_command_or_a_parse_error(pieces: list[tuple[bytes, bytes]]) -> None:
    pieces = [(line.replace(b"\r", b"").replace(b"\n", b""), octets) for line, octets in pieces]
    assume(all(len(line) < 2000 for line, _ in pieces))
    try:
        command: p.Command | None = _feed(pieces)
    except p.ParseError as exc:
        command, why = None, exc.message
    if command is None:
        assert why  # the NO the client reads says what was wrong
    else:
        assert command.name in p.NAMES


@fuzz()
@given(st.text(min_size=1, max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_every_string_the_server_writes_reads_back(data: bytes) -> None:
    """``wire.string`` (quoted or ``{N}``) through the grammar gives the same octets back (RFC 5804 §4)."""
    assume(b"\xed\xa0" not in data and b"\xed\xb0" not in data)  # lone surrogates are not UTF-8
    written = b"NOOP " + wire.string(data) + b"\r\n"
    reader = p.CommandParser()
    line, _, rest = written.partition(b"\r\n")
    head = reader.feed(line + b"\r\n")
    if head is not None:
        reader.literal(rest[: head.size])
        assert reader.feed(rest[head.size :]) is None
    assert reader.command() == p.Noop("NOOP", data)


# ---- the real server ------------------------------------------------------------------------------
class Client:
    def __init__(self, server: Any, context: ssl.SSLContext, login: bool) -> None:
        self.server, self.context, self.login = server, context, login
        self.wire: Any = None

    def open(self) -> None:
        if self.wire is not None:
            return
        from managesievekit import Wire

        self.wire = Wire.connect(self.server.running, timeout=10)
        assert self.wire.reply().status == "OK"
        self.wire.starttls(self.context)
        if self.login:
            account = self.server.account
            answer = self.wire.authenticate(account.address, account.password)
            assert answer.status == "OK", answer

    def command(self, data: bytes) -> Any:
        self.open()
        self.wire.send(data + b"\r\n")
        first = self.wire.line()
        if first == b'""\r\n':  # AUTHENTICATE without an initial response: cancel (RFC 5804 §2.1)
            self.wire.send(b'"*"\r\n')
            return self.wire.reply()
        prepend = _Prepend(first, self.wire.file)
        self.wire.file = prepend
        try:
            return self.wire.reply()
        finally:
            self.wire.file = prepend.file

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()
            self.wire = None


class _Prepend:
    """A file whose next line is one already read."""

    def __init__(self, line: bytes, file: Any) -> None:
        self.pending, self.file = line, file

    def readline(self) -> bytes:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        return self.file.readline()

    def read(self, size: int) -> bytes:
        assert self.pending is None
        return self.file.read(size)

    def close(self) -> None:
        self.file.close()


@pytest.fixture
def clients(managesieve_server, client_tls):
    made = {False: Client(managesieve_server, client_tls, False), True: Client(managesieve_server, client_tls, True)}
    made[True].open()  # signed in before any example's failed logins can reach the per-address limit
    yield made
    for client in made.values():
        client.close()


def _one_line(data: bytes) -> bytes:
    # No line ends and no literal announcements of their own: the literal comes from its own strategy.
    return data.replace(b"\r", b" ").replace(b"\n", b" ").replace(b"{", b"(")


@fuzz(deadline=WIRE_DEADLINE)
@given(
    st.one_of(st.binary(max_size=80), lines_from(WORDS, max_size=8)),
    st.booleans(),
    st.one_of(st.none(), st.binary(max_size=200)),
)
def test_fuzzed_commands_get_ok_no_or_bye_and_the_session_goes_on(clients, data: bytes, login: bool, literal) -> None:
    line = _one_line(data)
    if line.split(b" ", 1)[0].upper() in _SKIP:
        line = b"X" + line
    if literal is not None:
        line += b" {%d+}\r\n" % len(literal) + literal
    client = clients[login]
    reply = client.command(line)
    assert reply.status in ("OK", "NO", "BYE"), (line, reply)
    # An exception inside the server is answered "Internal error"; TRYLATER for the limiter is its job.
    assert "Internal error" not in (reply.text or ""), (line, reply)
    if reply.status == "BYE":  # e.g. three failed AUTHENTICATEs: a new connection for the next example
        assert client.wire.closed()
        client.close()
        return
    after = client.command(b'NOOP "probe"')
    assert after.code == 'TAG "probe"', (line, reply, after)
