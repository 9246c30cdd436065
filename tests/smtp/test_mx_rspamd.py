"""The MX asks a real rspamd (``tests/rspamdkit.py``) before it answers DATA, over real sockets.

Reply codes: RFC 5321 §4.2.2 (550 "mailbox unavailable / policy", 451 "local error, try again"),
RFC 3463 §3.8 X.7.1 ("delivery not authorized, message refused"): permanent for rspamd's reject,
transient for its soft reject and for a filter that cannot answer when the operator chose tempfail.
"""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import ssl
import threading
import time

import pytest
from rspamdkit import GTUBE, JUNK_MARK

from smtpkit import folder
from support import ComponentThread, free_port

pytestmark = pytest.mark.tool("rspamd", "dnsmasq", "redis-server")


@pytest.fixture
def mx_overrides(request, rspamd) -> dict:
    """Every MX of this module scans with the session's rspamd; a test may add settings (``indirect``),
    or ask for the silent server (``{"silent": True}``) in its place."""
    extra = dict(getattr(request, "param", {}))
    url = rspamd.url
    if extra.pop("silent", False):
        url = f"http://127.0.0.1:{request.getfixturevalue('silent').port}"
    return {"rspamd_url": url, "rspamd_timeout": 5.0, **extra}


def _message(subject: str, body: str = "Hello, see you at lunch tomorrow.") -> bytes:
    return (
        f"From: Someone <someone@example.org>\r\nTo: demo@example.test\r\nSubject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def _send(port: int, raw: bytes, rcpt: str = "demo@example.test") -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.org")
        client.mail("someone@example.org")
        client.rcpt(rcpt)
        return client.data(raw)


def _read(mx, name: str) -> list[bytes]:
    return folder(mx.settings, mx.config, "demo@example.test", mx.passwords["demo@example.test"], name)


@pytest.fixture
def mx(mx, config):
    """The MX of ``tests/smtp/conftest.py``, with the config store to read mailboxes with."""
    mx.config = config
    return mx


async def test_gtube_is_refused_at_data_with_550_5_7_1(mx) -> None:
    """rspamd's reject -> RFC 5321 §4.2.2 550, RFC 3463 5.7.1, with rspamd's own message; nothing stored."""
    code, reply = await asyncio.to_thread(_send, mx.port, _message("offer", GTUBE.decode()))
    assert (code, reply) == (550, b"5.7.1 Gtube pattern")
    assert _read(mx, "INBOX") == []
    assert _read(mx, "Junk") == []


async def test_a_clean_message_lands_in_inbox_with_its_score(mx) -> None:
    """Our verdict only: a sender's own X-Spam-* fields are cut, the rest of the message is kept."""
    forged = b"X-Spam-Status: No, score=-100\r\nX-Spam-Flag:\r\n NO\r\n" + _message("lunch")
    code, _ = await asyncio.to_thread(_send, mx.port, forged)
    assert code == 250
    (stored,) = _read(mx, "INBOX")
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    assert head.count("X-Spam-Status:") == 1
    assert "X-Spam-Flag" not in head
    assert "score=-100" not in head
    assert stored.endswith(_message("lunch"))
    assert "X-Spam-Status: No, score=" in head
    assert "X-Spam-Score: " in head
    assert "X-Spam-Symbols: " in head
    assert _read(mx, "Junk") == []


async def test_the_add_header_band_lands_in_junk_read_over_imap(mx) -> None:
    """rspamd's ``add header`` (6 <= score < 15 with Debian's thresholds): 250, then the Junk folder,
    as an IMAP client sees it, with the score and the symbol that put it there."""
    code, _ = await asyncio.to_thread(_send, mx.port, _message(f"cheap watches {JUNK_MARK}"))
    assert code == 250
    imap = ComponentThread(
        "imap", mx.settings.model_copy(update={"imaps_port": 0, "imap_port": 0, "bind_addresses": ["127.0.0.1"]})
    )
    try:

        def over_imap() -> dict[str, list[bytes]]:
            tls = ssl.create_default_context(cafile=mx.ca)
            client = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=tls, timeout=30)
            try:
                client.login("demo@example.test", mx.passwords["demo@example.test"])
                found: dict[str, list[bytes]] = {}
                for name in ("INBOX", "Junk"):
                    client.select(name, readonly=True)
                    _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
                    found[name] = [part[1] for part in data if isinstance(part, tuple)]
                return found
            finally:
                client.logout()

        found = await asyncio.to_thread(over_imap)
    finally:
        await asyncio.to_thread(imap.stop)
    assert found["INBOX"] == []
    (head,) = found["Junk"]
    assert b"X-Spam-Status: Yes, score=" in head
    assert b"SEALMAIL_TEST_JUNK(8.00)" in head


async def test_rspamd_stopped_the_message_is_accepted_and_marked_unchecked(mx, rspamd) -> None:
    """The default (``rspamd_unavailable=accept``): mail keeps flowing, marked for the user."""
    rspamd.stop()
    try:
        code, _ = await asyncio.to_thread(_send, mx.port, _message("while away"))
    finally:
        await asyncio.to_thread(rspamd.start)
    assert code == 250
    (stored,) = _read(mx, "INBOX")
    assert b"X-Spam-Status: unchecked\r\n" in stored


@pytest.mark.parametrize("mx_overrides", [{"rspamd_unavailable": "tempfail"}], indirect=True)
async def test_rspamd_stopped_with_tempfail_answers_451_4_7_1(mx, rspamd) -> None:
    """RFC 5321 §4.2.2 451 (the sender keeps the message and retries), RFC 3463 4.7.1."""
    rspamd.stop()
    try:
        code, reply = await asyncio.to_thread(_send, mx.port, _message("while away"))
    finally:
        await asyncio.to_thread(rspamd.start)
    assert code == 451
    assert reply.startswith(b"4.7.1 ")
    assert _read(mx, "INBOX") == []


class Silent:
    """An HTTP server that takes connections and requests and never answers (a hung rspamd)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests = threading.Event()
        self._sock = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._held: list = []

    def _run(self) -> None:
        import socket

        with socket.create_server(("127.0.0.1", self.port)) as server:
            server.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                self._held.append(conn)
                conn.settimeout(5)
                if conn.recv(65536):
                    self.requests.set()

    def __enter__(self) -> Silent:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent():
    with Silent() as server:
        yield server


@pytest.mark.parametrize("mx_overrides", [{"silent": True, "rspamd_timeout": 2.0}], indirect=True)
async def test_a_silent_rspamd_is_bounded_by_the_timeout_and_other_sessions_go_on(mx, silent) -> None:
    """A hung rspamd costs a message ``rspamd_timeout`` at most, then the fallback (accept, marked);
    meanwhile another session is served at once."""
    # Both clients run on threads of their own, timed there: the MX shares this event loop with the
    # test, so only a clock outside the loop sees the loop stall.
    first_done = threading.Event()

    def first() -> tuple[tuple[int, bytes], float]:
        began = time.monotonic()
        try:
            return _send(mx.port, _message("slow")), time.monotonic() - began
        finally:
            first_done.set()

    def other_session() -> tuple[float, bool]:
        assert silent.requests.wait(10)  # the first message is with the silent rspamd now
        began = time.monotonic()
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as client:
            client.ehlo("other.example.org")
            client.mail("x@example.org")
            assert client.rcpt("demo@example.test")[0] == 250
            assert client.noop()[0] == 250
        return time.monotonic() - began, first_done.is_set()

    ((code, _), waited), (served_in, first_was_done) = await asyncio.gather(
        asyncio.to_thread(first), asyncio.to_thread(other_session)
    )
    assert served_in < 1.0
    assert not first_was_done  # the other session was served while the first waited for rspamd
    assert code == 250
    assert 1.9 <= waited < 6
    (stored,) = _read(mx, "INBOX")
    assert b"X-Spam-Status: unchecked\r\n" in stored


async def test_a_client_without_reverse_dns_is_left_for_rspamd_to_resolve(rspamd) -> None:
    """The MX does no reverse lookup of its own, so it sends no ``Hostname``: rspamd resolves the
    client's PTR itself and scores a client that has none (RDNS_NONE). ``Hostname: unknown`` would
    tell it not to look, and spam from hosts without reverse DNS would go unpenalised."""
    from sealmail.spam.rspamd import RspamdClient, ScanRequest

    request = ScanRequest(ip="192.0.2.10", helo="mail.example.org", mail_from="a@example.org", rcpt=["b@example.test"],
                          queue_id="rdns1")  # fmt: skip
    assert "Hostname" not in dict(request.headers())
    client = RspamdClient(rspamd.url, timeout=30)
    try:
        message = b"From: a@example.org\r\nTo: b@example.test\r\nSubject: hello\r\n\r\nhello\r\n"
        result = await client.check([message], request)
    finally:
        await client.close()
    assert "RDNS_NONE" in {symbol.name for symbol in result.symbols}


class FakeWorker:
    """A loopback server in rspamd's place that records one request and gives one canned answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.request = b""

    async def __aenter__(self) -> FakeWorker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        self.request = head + await reader.readexactly(length)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


def _request():
    from sealmail.spam.rspamd import ScanRequest

    return ScanRequest(ip="192.0.2.10", helo="mail.example.org", mail_from="a@example.org", rcpt=["b@example.test"],
                       queue_id="q1")  # fmt: skip


async def test_the_scan_sends_the_envelope_and_the_message_pieces_byte_for_byte() -> None:
    """The pieces DATA was read in go as they are (a memoryview too); an answer without Content-Length
    runs to the end of the connection (RFC 9112 §6.3)."""
    from sealmail.spam.rspamd import RspamdClient

    answer = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"action": "no action", "score": 1.5, "required_score": 15}'
    pieces = [b"Subject: hi\r\n\r\n", memoryview(b"--hello--\r\n")[2:]]
    async with FakeWorker(answer) as worker:
        result = await RspamdClient(worker.url + "/", timeout=5).check(pieces, _request())
    assert (result.action, result.score) == ("no action", 1.5)
    head, body = worker.request.split(b"\r\n\r\n", 1)
    assert body == b"Subject: hi\r\n\r\nhello--\r\n"
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /checkv2 HTTP/1.1"
    assert {b"IP: 192.0.2.10", b"Helo: mail.example.org", b"From: <a@example.org>", b"Rcpt: <b@example.test>",
            b"Queue-Id: q1", b"Content-Length: 24"} <= set(lines)  # fmt: skip


_JSON = b'{"action": "no action", "score": 0}'


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 35\r\n\r\n" + _JSON, id="http-500"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!", id="not-json"),
        pytest.param(b'HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n{"action": "no', id="cut-short"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="cut-in-header"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="chunked"),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n", id="not-http"),
        pytest.param(b"", id="closed"),
    ],
)
async def test_an_answer_that_is_not_a_whole_json_200_is_rspamd_unavailable(answer: bytes) -> None:
    """Whatever else the worker says, the scan ends in ``RspamdUnavailable`` (and the
    ``rspamd_unavailable`` fallback decides), never in an exception the MX does not expect."""
    from sealmail.spam.rspamd import RspamdClient, RspamdUnavailable

    async with FakeWorker(answer) as worker:
        with pytest.raises(RspamdUnavailable):
            await RspamdClient(worker.url, timeout=5).check([b"Subject: hi\r\n\r\nhello\r\n"], _request())
