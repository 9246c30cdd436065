"""The MX asks a real rspamd (``tests/rspamdkit.py``) before it answers DATA, over real sockets.

Reply codes: RFC 5321 §4.2.2 (550 "mailbox unavailable / policy", 451 "local error, try again"),
RFC 3463 §3.8 X.7.1 ("delivery not authorized, message refused"): permanent for rspamd's reject,
transient for its soft reject and for a filter that cannot answer when the operator chose tempfail.
"""

from __future__ import annotations

import asyncio
import email.utils
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


def _send(port: int, raw: bytes, rcpt: str | list[str] = "demo@example.test") -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.org")
        rcpts = [rcpt] if isinstance(rcpt, str) else rcpt
        if any(not a.isascii() for a in rcpts):  # RFC 6531 §3.4: SMTPUTF8 for an internationalised address
            client.command_encoding = "utf-8"
            client.mail("someone@example.org", ["SMTPUTF8"])
        else:
            client.mail("someone@example.org")
        for address in rcpts:
            assert client.rcpt(address)[0] == 250
        return client.data(raw)


def _read(mx, name: str, address: str = "demo@example.test") -> list[bytes]:
    return folder(mx.settings, mx.config, address, mx.passwords[address], name)


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
    assert "SEALMAIL_TEST_HOSTNAME" not in head  # 127.0.0.1 has no PTR here: no Hostname was sent
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


# ---- per-domain thresholds (issue 21) ------------------------------------------------------------
REMI = "rémi@universitéxyz.fr"


async def test_a_domains_own_thresholds_apply_to_rspamds_score(mx) -> None:
    """The ``[junk-band]`` message scores about 9 (Debian: add header 6, reject 15). example.test lowers
    reject to 5: refused at DATA with RFC 5321 §4.2.2 550, RFC 3463 5.7.1. universitéxyz.fr raises
    junk to 20: the same message lands in INBOX, marked ``X-Spam-Status: No``."""
    from sealmail.services import domains

    domains.set_spam_thresholds(mx.config, "example.test", {"reject": 5})
    domains.set_spam_thresholds(mx.config, "universitéxyz.fr", {"junk": 20})
    code, reply = await asyncio.to_thread(_send, mx.port, _message(f"watches {JUNK_MARK}"))
    assert (code, reply) == (550, b"5.7.1 Message rejected as spam")
    code, reply = await asyncio.to_thread(_send, mx.port, _message(f"watches again {JUNK_MARK}"), REMI)
    assert code == 250, reply
    (stored,) = _read(mx, "INBOX", REMI)
    assert b"X-Spam-Status: No, score=" in stored
    assert b"SEALMAIL_TEST_JUNK(8.00)" in stored
    assert _read(mx, "Junk", REMI) == []
    assert _read(mx, "INBOX") == _read(mx, "Junk") == []


async def test_recipients_in_two_domains_share_one_reply_and_are_filed_each_by_their_own(mx) -> None:
    """RFC 5321 §4.2.5: one reply after DATA serves every recipient. A domain that takes the message
    gets it accepted for all; a recipient whose domain would have refused it finds it in Junk."""
    from sealmail.services import domains

    domains.set_spam_thresholds(mx.config, "example.test", {"reject": 5})
    domains.set_spam_thresholds(mx.config, "universitéxyz.fr", {"junk": 20})
    code, _ = await asyncio.to_thread(_send, mx.port, _message(f"both {JUNK_MARK}"), ["demo@example.test", REMI])
    assert code == 250
    (junk,) = _read(mx, "Junk")
    assert b"X-Spam-Status: Yes, score=" in junk
    (inbox,) = _read(mx, "INBOX", REMI)
    assert b"X-Spam-Status: No, score=" in inbox
    assert junk.count(b"X-Spam-Status:") == inbox.count(b"X-Spam-Status:") == 1
    assert junk.split(b"X-Spam-Score:", 1)[1] == inbox.split(b"X-Spam-Score:", 1)[1]  # the same message
    assert _read(mx, "INBOX") == _read(mx, "Junk", REMI) == []


# ---- FCrDNS: the client's verified host name goes to rspamd (RFC 8601 §3, iprev) -----------------
@pytest.mark.parametrize("mx", [1], indirect=True)
async def test_rspamd_gets_the_forward_confirmed_host_name_and_never_a_bare_ptr(mx) -> None:
    """A PTR whose name leads elsewhere proves nothing: no ``Hostname``. A PTR whose name resolves
    back to the client's address is sent, and rspamd echoes it (``SEALMAIL_TEST_HOSTNAME``; its own
    DNS has no PTR, so only the MX can have told it)."""
    from sealmail.net.dns import make_resolver
    from sealmail.net.fcrdns import confirmed_name

    mx.dns.ptr("127.0.0.1", "liar.example.org")
    mx.dns.a("liar.example.org", "192.0.2.7")
    await asyncio.to_thread(mx.dns.restart)
    assert await confirmed_name(make_resolver(mx.settings), "127.0.0.1") is None
    assert (await asyncio.to_thread(_send, mx.port, _message("bare ptr")))[0] == 250

    mx.dns.lines.clear()
    mx.dns.a("client.example.org", "127.0.0.1")  # dnsmasq's host-record: A and PTR
    await asyncio.to_thread(mx.dns.restart)
    assert await confirmed_name(make_resolver(mx.settings), "127.0.0.1") == "client.example.org"
    assert (await asyncio.to_thread(_send, mx.port, _message("confirmed")))[0] == 250

    bare, confirmed = _read(mx, "INBOX")
    assert b"SEALMAIL_TEST_HOSTNAME" not in bare
    assert b"SEALMAIL_TEST_HOSTNAME(0.00)" in confirmed


# ---- statistics: counted by the MX, shown by the dashboard and the API ---------------------------
@pytest.mark.parametrize("mx", [2], indirect=True)
async def test_spam_statistics_reach_the_dashboard_and_the_api(mx, redis_url) -> None:
    """GTUBE (refused), a ``[junk-band]`` message (Junk) and a clean one through two MX session
    processes: each counts in memory and adds its numbers to the config store at stop; the web
    admin's dashboard (HTTPS GET) and ``GET /v1/stats/spam`` show the sum."""
    import re

    import httpx
    import redis as redis_lib
    from pydantic import SecretStr

    from sealmail.services import tokens

    from webkit import BASIC, Browser, create_admin

    assert (await asyncio.to_thread(_send, mx.port, _message("offer", GTUBE.decode())))[0] == 550
    assert (await asyncio.to_thread(_send, mx.port, _message(f"watches {JUNK_MARK}")))[0] == 250
    assert (await asyncio.to_thread(_send, mx.port, _message("lunch")))[0] == 250
    await mx.component.stop()  # the session processes flush what they counted as they end

    url = redis_url.rsplit("/", 1)[0] + "/7"
    redis_lib.Redis.from_url(url).flushdb()
    web_settings = mx.settings.model_copy(
        update={
            "web_port": 0,
            "http_port": 0,
            "api_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "auth_basic_username": BASIC[0],
            "auth_basic_password": SecretStr(BASIC[1]),
            "redis_url": SecretStr(url),
            "domain": "example.test",
            "hostname": "mail.example.test",
        }
    )
    _, secret = tokens.create_token(mx.config, "stats", ["logs:read"])

    def read_both() -> tuple[str, dict]:
        web = ComponentThread("web", web_settings)
        api = ComponentThread("api", web_settings)
        browser = Browser(f"https://127.0.0.1:{web.ports['web']}", mx.ca)
        try:
            create_admin(browser)
            page = browser.get("/admin")
            assert page.status_code == 200
            with httpx.Client(verify=ssl.create_default_context(cafile=mx.ca), timeout=30) as client:
                answer = client.get(
                    f"https://127.0.0.1:{api.ports['api']}/v1/stats/spam",
                    params={"days": 7},
                    headers={"Authorization": f"Bearer {secret}"},
                )
            assert answer.status_code == 200, answer.text
            return page.text, answer.json()
        finally:
            browser.close()
            api.stop()
            web.stop()

    page, stats = await asyncio.to_thread(read_both)
    shown = dict(re.findall(r'data-spam="(\w+)">(\d+)<', page))
    assert shown == {"scanned": "3", "rejected": "1", "deferred": "0", "junk": "1", "unchecked": "0"}
    assert re.search(r"<code>GTUBE</code></th><td>1</td>", page)
    assert stats["totals"] == {"scanned": 3, "rejected": 1, "deferred": 0, "junk": 1, "unchecked": 0}
    assert len(stats["days"]) == 7
    assert stats["days"][-1] | {"day": None} == {"day": None, **stats["totals"]}  # all of it today (UTC)
    assert {"symbol": "GTUBE", "messages": 1} in stats["top_symbols"]
    assert {"symbol": "SEALMAIL_TEST_JUNK", "messages": 1} in stats["top_symbols"]


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


async def test_an_smtputf8_message_with_utf8_header_fields_is_not_scored_as_broken(mx) -> None:
    """RFC 6532 §3: in an SMTPUTF8 transaction (RFC 6531) UTF-8 in header fields is valid, so a
    French sender writing to rémi@universitéxyz.fr lands in INBOX. rspamd 3.4 scores the same raw
    UTF-8 From/To/Subject as broken (INVALID_FROM_8BIT, FROM_INVALID, *_NEEDS_ENCODING: 8 points
    more, the Junk band) unless the MX tells it the transaction was SMTPUTF8. (Its R_MIXED_CHARSET
    scores accented words in any French message, encoded or not: rspamd's judgement, left alone.)"""
    raw = (
        f"From: expéditeur@example.org\r\nTo: {REMI}\r\nSubject: Réunion à l'université\r\n"
        f"Date: {email.utils.formatdate()}\r\nMessage-ID: <reunion.1@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Bonjour Rémi, la réunion est déplacée à jeudi.\r\n"
    ).encode()
    code, reply = await asyncio.to_thread(_send, mx.port, raw, REMI)
    assert code == 250, reply
    junk = _read(mx, "Junk", REMI)
    assert junk == [], junk[0][:1500].decode("utf-8", "replace")
    (stored,) = _read(mx, "INBOX", REMI)
    assert b"X-Spam-Status: No, score=" in stored
    assert b"INVALID_FROM_8BIT" not in stored
    assert b"FROM_INVALID" not in stored
    assert _read(mx, "Junk", REMI) == []


def test_only_an_smtputf8_transaction_exempts_utf8_header_fields() -> None:
    from sealmail.spam.rspamd import SMTPUTF8_SETTINGS, ScanRequest

    plain = ScanRequest(ip="192.0.2.1", helo="h", mail_from="a@example.org", rcpt=["b@example.test"], queue_id="q")
    assert "Settings" not in dict(plain.headers())
    utf8 = ScanRequest(ip="192.0.2.1", helo="h", mail_from="a@example.org", rcpt=[REMI], queue_id="q", smtputf8=True)
    assert dict(utf8.headers())["Settings"] == SMTPUTF8_SETTINGS
