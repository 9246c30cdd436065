"""Robustness: bad input gets BAD and the session goes on; limits hold; one broken session stays alone."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealmail.appcontext import AppContext
from sealmail.imap.session import Options, Session
from sealmail.imap.states import AUTHENTICATED, LOGOUT, SELECTED

from .conftest import make_account
from .test_parser import COMMAND_WORDS, TOKENS
from mailgen import message


def test_malformed_lines_get_bad_and_the_session_continues(imap) -> None:
    """RFC 9051 §7.1.5: BAD for a command that cannot be parsed; the connection stays usable."""
    raw = imap.raw()
    for line, expected in (
        (b"", b"* BAD missing or invalid tag"),
        (b"+++", b"* BAD missing or invalid tag"),
        (b"a1", b"a1 BAD expected a space"),
        (b"a2 FROB", b"a2 BAD unknown command FROB"),
        (b'a3 LOGIN "x', b"a3 BAD line end inside a quoted string"),
        (b"a4 SELECT INBOX", b"a4 BAD SELECT is not valid in the not authenticated state"),
        (b"a5 \xff\xfe", b"a5 BAD expected an atom"),
    ):
        raw.send(line + b"\r\n")
        assert raw.readline().startswith(expected), line
    raw.login(imap.account())
    assert raw.command("b1 FETCH 1 FLAGS")[-1].startswith(b"b1 BAD FETCH is not valid in the authenticated state")
    assert raw.command("b2 NOOP")[-1] == b"b2 OK NOOP completed\r\n"
    raw.close()


def test_overlong_line_and_oversized_literals_are_refused_unread(imap) -> None:
    """A line over the limit is answered BAD; a too-large literal is refused before one octet is read."""
    raw = imap.raw()
    raw.send(b"a NOOP " + b"x" * 70_000 + b"\r\n")
    assert raw.readline() == b"* BAD Line too long\r\n"
    raw.send(b"b LOGIN {2000000}\r\n")  # synchronizing: no "+", the client must not send it
    assert raw.readline() == b"b BAD [TOOBIG] Literal too large before authentication\r\n"
    assert raw.command("c NOOP")[-1] == b"c OK NOOP completed\r\n"
    raw.send(b"d LOGIN {2000000+}\r\n")  # non-synchronizing: the octets are coming; the server hangs up
    assert raw.readline() == b"d BAD [TOOBIG] Literal too large before authentication\r\n"
    assert raw.readline() == b"* BYE Literal too large\r\n"
    with pytest.raises(ConnectionError):
        raw.readline()
    raw.close()


@pytest.mark.parametrize("imap", [{"imap_login_timeout": 0.5}], indirect=True)
def test_idle_unauthenticated_connections_are_closed(imap) -> None:
    raw = imap.raw()
    started = time.monotonic()
    assert raw.readline() == b"* BYE Autologout; idle for too long\r\n"
    with pytest.raises(ConnectionError):
        raw.readline()
    assert time.monotonic() - started < 5
    raw.close()


@pytest.mark.parametrize("imap", [{"imap_write_deadline": 1.0}], indirect=True)
def test_a_client_that_stops_reading_is_dropped(imap) -> None:
    """Output waits for the client (back-pressure), and past the write deadline the session ends."""
    with imap.client() as client:
        client.append("INBOX", None, None, message(1, body="x" * 1_000_000 + "\r\n"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", imap.port))
    tls = imap.tls.wrap_socket(sock, server_hostname="localhost")
    acct = imap.account()
    tls.sendall(f'l LOGIN "{acct.address}" {acct.password}\r\ns SELECT INBOX\r\n'.encode())
    time.sleep(0.5)
    tls.sendall(b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i for i in range(50)))  # 50 MB asked, nothing read
    time.sleep(3)
    # Meanwhile, other sessions are served as usual.
    with imap.client() as other:
        assert other.select()[0] == "OK"
    received = 0
    tls.settimeout(10)
    while chunk := tls.recv(65536):
        received += len(chunk)
    assert received < 10_000_000  # the server gave up instead of queueing 50 MB
    tls.close()


def test_one_broken_session_does_not_affect_another(imap, monkeypatch) -> None:
    """A failure inside one command is NO [SERVERBUG] for that session only; a vanished client is harmless."""
    from sealmail.store.mailbox import Mailbox

    real = Mailbox.list_folders
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return real(self)

    monkeypatch.setattr(Mailbox, "list_folders", flaky)
    a, b = imap.raw(), imap.raw()
    a.login(imap.account())
    b.login(imap.account())
    assert a.command('x LIST "" "*"')[-1].startswith(b"x NO [SERVERBUG]")
    assert b.command('y LIST "" "*"')[-1] == b"y OK LIST completed\r\n"
    assert a.command("z NOOP")[-1] == b"z OK NOOP completed\r\n"
    # Clients vanishing mid-literal and mid-IDLE leave the others alone.
    c = imap.raw()
    c.login(imap.account())
    c.send("m APPEND INBOX {100}\r\n")
    c.readline()
    c.send("only part")
    c.close()
    d = imap.raw()
    d.login(imap.account())
    d.send("i IDLE\r\n")
    d.readline()
    d.close()
    time.sleep(0.2)
    assert b.command("w SELECT INBOX")[-1].startswith(b"w OK")
    a.close()
    b.close()


class FakeTransport:
    """In-memory transport: the session's output accumulates; continuation reads say DONE."""

    secure = True
    peer_ip = "127.0.0.1"
    can_starttls = False

    def __init__(self) -> None:
        self.output = bytearray()

    def write(self, data: bytes) -> None:
        self.output += data

    async def flush(self) -> None:
        return None

    async def readline(self, timeout: float | None = None) -> bytes:
        return b"DONE\r\n"

    async def starttls(self, reply: bytes | None = None) -> None:
        raise AssertionError("not offered")

    compressed = False

    async def compress(self, reply: bytes) -> None:
        self.output += reply  # the bytes would be compressed from here on; the session cannot tell
        self.compressed = True


@pytest.fixture
def fuzz_session(settings):
    """A signed-in session with a selected INBOX holding a few messages, on an in-memory transport."""
    from sealmail.config.sqlite import SQLiteConfigStore

    config = SQLiteConfigStore(settings.config_db_path)
    account = make_account(config, settings, "fuzz@example.test")
    config.close()
    loop = asyncio.new_event_loop()
    ctx = AppContext(settings)
    state: dict[str, Session] = {}

    def fresh() -> Session:
        session = Session(ctx, FakeTransport(), Options(append_limit=100_000))
        for line in (
            f"l LOGIN {account.address} {account.password}",
            "e ENABLE CONDSTORE",
            "s SELECT INBOX",
        ):
            loop.run_until_complete(session.execute(line.encode() + b"\r\n"))
        assert session.state == SELECTED, session.conn.output
        return session

    session = fresh()
    for i in range(3):
        loop.run_until_complete(session.execute(b"a APPEND INBOX {%d+}\r\n" % len(message(i)) + message(i) + b"\r\n"))
    state["session"] = session

    def run(data: bytes) -> tuple[Session, bytes]:
        current = state["session"]
        if current.state not in (AUTHENTICATED, SELECTED):
            loop.run_until_complete(current.close())
            current = state["session"] = fresh()
        current.conn.output.clear()
        loop.run_until_complete(current.execute(data))
        return current, bytes(current.conn.output)

    yield run
    loop.run_until_complete(state["session"].close())
    loop.run_until_complete(ctx.close())
    loop.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.builds(
        lambda tag, word, rest: (tag + " " + word + "".join(rest)).encode("utf-8"),
        st.sampled_from(["t", "T9"]),
        st.sampled_from([*COMMAND_WORDS, "CLOSE", "UNSELECT", "CHECK", "EXAMINE", "DELETE", "SUBSCRIBE"]),
        st.lists(st.sampled_from(TOKENS), max_size=12),
    )
)
def test_sessions_always_answer(fuzz_session, data: bytes) -> None:
    """Property: a signed-in, selected session answers every command (tagged, or BAD) and never raises."""
    session, output = fuzz_session(data + b"\r\n")
    assert output.endswith(b"\r\n")
    tag = data.split(b" ", 1)[0]
    lines = output.split(b"\r\n")
    assert any(line.startswith(tag + b" ") or line.startswith(b"* BAD") for line in lines) or session.state == LOGOUT
    assert b" NO [SERVERBUG]" not in output, output
