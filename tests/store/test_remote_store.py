"""The store component (``sealmail serve store``) and its client: a real process, real sockets, mutual TLS.

Issue 19: front-ends reach mailboxes on a data host only through the store's channel. TLS 1.3
(RFC 8446 §4.3.2, CertificateRequest) with a client certificate required from the deployment CA;
requests over a WebSocket (RFC 6455) carrying only the contract's methods and the store's own types.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from sealmail.crypto.keys import MailboxSecrets
from sealmail.mime.imap import Adjacent
from sealmail.services import credentials
from sealmail.store import rpc
from sealmail.store import search as sk
from sealmail.store.dav import NewItem
from sealmail.store.errors import DavNotFound, DavPreconditionFailed, FolderNotFound, StoreUnavailable
from sealmail.store.model import Folder, MaildropEntry, MessageInfo
from sealmail.store.remote import RemoteMailStore, client_tls
from sealmail.tls.devca import ensure_dev_certificates

from privacyscan import Secrets, assert_no_secrets

RAW = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: remote marker zebra\r\n\r\nbody zebra text\r\n"


# ---- the codec -------------------------------------------------------------------------------------
def test_codec_round_trips_the_store_records() -> None:
    """Records, bytes, datetimes, tuples, sets, int-keyed maps and search trees come back equal."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = [
        Folder(1, "INBOX", None, 7, 8, 9, True, False),
        MessageInfo(3, 4, frozenset({"\\Seen"}), when, 100, 5, False),
        MaildropEntry(1, 2, 3, 4, False),
        {1: b"\x00\xff", 2: None},
        (1, "two", (3,)),
        {"a"},
        sk.And((sk.Not(sk.HasFlag("\\Seen")), sk.Text("subject", "x"), sk.UidSet(((1, None),)))),
        Adjacent([b"x", "y", [None, 1]]),
    ]
    frame = rpc.loads(rpc.reply_ok(7, value))
    assert frame["ok"] == value
    assert type(frame["ok"][7]) is Adjacent
    assert type(frame["ok"][2]) is MaildropEntry


def test_codec_refuses_unknown_types_and_tags() -> None:
    """Only the store's own types travel: anything else is refused both ways, nothing is unpickled."""
    with pytest.raises(rpc.CodecError):
        rpc.encode(object())
    with pytest.raises(rpc.CodecError):
        rpc.encode(Path("/etc/passwd"))
    with pytest.raises(rpc.CodecError):
        rpc.loads('{"id": 1, "ok": {"$r": "Popen", "v": ["sh"]}}')
    with pytest.raises(rpc.CodecError):
        rpc.loads('{"id": 1, "ok": {"$pickle": "gASV"}}')


# ---- a store in its own process -----------------------------------------------------------------
@pytest.fixture
def unlocked(settings, config, account):
    address, password = account
    return credentials.unlock(config, settings, address, password)


def _client(certs, port: int, tls: ssl.SSLContext | None = None) -> RemoteMailStore:
    tls = tls or client_tls(certs.ca, certs.client_cert, certs.client_key)
    return RemoteMailStore(f"wss://localhost:{port}", tls, timeout=10)


def test_mailbox_calls_through_the_store(data_host, certs, unlocked) -> None:
    """A remote handle answers the contract as the local one does; store errors arrive as themselves."""

    async def go() -> None:
        store = _client(certs, data_host.port)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            appended = await handle.append("INBOX", RAW, ["\\Flagged"])
            infos = await handle.messages("INBOX")
            assert [i.uid for i in infos] == [appended.uid]
            assert "\\Flagged" in infos[0].flags
            assert await handle.search("INBOX", sk.Text("subject", "zebra")) == [appended.uid]
            assert await handle.raw(infos[0].body_id) == RAW
            envelope = (await handle.envelope_values([infos[0].body_id]))[infos[0].body_id]
            assert isinstance(envelope, list)
            with pytest.raises(FolderNotFound):
                await handle.folder("Nope")
            # the blocking API on the handle's own thread (what imap/ passes to run)
            names = await handle.run(lambda: [f.name for f in handle.mailbox.list_folders()])
            assert "INBOX" in names
            await handle.release()
        finally:
            await store.close()

    asyncio.run(go())


def test_store_refuses_a_client_without_a_ca_certificate(data_host, certs, tmp_path) -> None:
    """RFC 8446 §4.4.2.4: the store requires a client certificate; none, or one from another CA, is refused."""

    async def go(tls: ssl.SSLContext) -> None:
        store = _client(certs, data_host.port, tls)
        try:
            with pytest.raises(StoreUnavailable):
                await store.call("spool_size", "a" * 24)
        finally:
            await store.close()

    no_cert = ssl.create_default_context(cafile=str(certs.ca))
    asyncio.run(go(no_cert))
    other = ensure_dev_certificates(tmp_path / "other-ca")  # a certificate from another CA
    foreign = ssl.create_default_context(cafile=str(certs.ca))
    foreign.load_cert_chain(other.cert, other.key)
    asyncio.run(go(foreign))
    # and with the deployment CA's client certificate it answers
    asyncio.run(_spool_size(certs, data_host.port))


async def _spool_size(certs, port: int) -> None:
    store = _client(certs, port)
    try:
        assert await store.call("spool_size", "a" * 24) == 0
    finally:
        await store.close()


def test_store_refuses_methods_outside_the_contract(data_host, certs, unlocked) -> None:
    """Only the contract's methods are called: ``run``, private methods and unknown names are refused."""

    async def go() -> None:
        tls = client_tls(certs.ca, certs.client_cert, certs.client_key)
        async with connect(f"wss://localhost:{data_host.port}", ssl=tls) as ws:

            async def ask(session, method, *args):
                await ws.send(rpc.request(1, session, method, args, {}))
                return rpc.loads(await ws.recv())

            refused = await ask(None, "delete", unlocked.mailbox_id)
            assert refused["error"]["type"] == "MethodNotAllowed"
            opened = await ask(None, "open", unlocked.mailbox_id, *_keys(unlocked.secrets))
            session = opened["ok"]
            for method in ("run", "_shutdown", "snapshot", "integrity_check", "__init__", "close"):
                reply = await ask(session, method)
                assert reply["error"]["type"] == "MethodNotAllowed", method
            await ws.send('{"id": 2, "session": null, "method": "spool_size", "args": [{"$r": "Spool", "v": []}]}')
            assert rpc.loads(await ws.recv())["error"]["type"] == "CodecError"
            assert (await ask(session, "usage"))["ok"] == 0

    asyncio.run(go())


def _keys(secrets: MailboxSecrets) -> tuple[bytes, bytes]:
    return secrets.mailbox_key, secrets.private_key


def test_the_key_never_reaches_the_data_hosts_files_or_log(data_host, certs, unlocked, settings, account) -> None:
    """DESIGN §4 on the data host: the key arrives only in the channel; no file or log line holds it."""

    async def go() -> None:
        store = _client(certs, data_host.port)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            await handle.append("INBOX", RAW)
            with pytest.raises(FolderNotFound):
                await handle.folder("Missing")  # an error path too
            await handle.release()
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
        finally:
            await store.close()  # the connection ends with a session still open

    asyncio.run(go())
    data_host.stop()
    assert data_host.log.exists()
    secrets = Secrets().unlocked(account[0], unlocked).password("password", account[1]).text("text", "zebra text")
    assert data_host.log.read_text()  # it logged (connections, the error path) ...
    assert_no_secrets(data_host.log.parent, secrets)  # ... but neither key: data dir, log, everything


def test_killed_store_makes_calls_fail_temporarily_and_recovers(data_host, certs, unlocked) -> None:
    """Connection loss is ``StoreUnavailable``; once the store is back the same handle works again."""

    async def go() -> None:
        store = _client(certs, data_host.port)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            await handle.append("INBOX", RAW)
            data_host.kill()
            with pytest.raises(StoreUnavailable):
                await handle.uids("INBOX")
            with pytest.raises(StoreUnavailable):
                await handle.uids("INBOX")  # refused while it is down
            await asyncio.to_thread(data_host.start)
            assert len(await handle.uids("INBOX")) == 1  # reopened by itself with the keys it holds
            await handle.release()
        finally:
            await store.close()

    asyncio.run(go())


# ---- DAV transactions through the store ----------------------------------------------------------
def _event(href: str, text: str = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") -> NewItem:
    return NewItem(href, href, f'"{href}-{len(text)}"', "VCALENDAR", "VEVENT", 100, 200, text)


def test_a_dav_transaction_through_the_store_rolls_back_as_a_whole(data_host, certs, unlocked) -> None:
    """One DAV request is one transaction on the data host too (RFC 4918 §9.9.2's MOVE, a PUT of a
    whole calendar, If-Match checks then writes): a failure half-way leaves nothing written."""

    async def go() -> None:
        store = _client(certs, data_host.port)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            await handle.dav_create_collection("cal", "VCALENDAR")

            def request_that_fails() -> None:
                box = handle.mailbox
                with box.dav_transaction():
                    box.dav_put_item("cal", _event("a.ics"))
                    box.dav_put_item("cal", _event("b.ics"))
                    box.dav_move_item("cal", "a.ics", "missing", "a.ics")  # DavNotFound: the request fails

            with pytest.raises(DavNotFound):
                await handle.run(request_that_fails)
            assert await handle.dav_items("cal") == []  # neither PUT stayed

            def request_that_succeeds() -> str:
                box = handle.mailbox
                with box.dav_transaction():
                    box.dav_put_item("cal", _event("a.ics"))
                    with contextlib.suppress(DavPreconditionFailed):  # a refused part is undone alone
                        box.dav_put_item("cal", _event("a.ics"), if_none_match=True)
                    return box.dav_get_item("cal", "a.ics").href

            assert await handle.run(request_that_succeeds) == "a.ics"
            assert [i.href for i in await handle.dav_items("cal")] == ["a.ics"]
            await handle.release()
        finally:
            await store.close()

    asyncio.run(go())


def test_other_sessions_wait_for_a_dav_transaction_through_the_store(data_host, certs, unlocked) -> None:
    """Isolation: another session's write to the mailbox waits until the open transaction commits,
    so a request's If-Match check and its write see the same state."""

    async def go() -> None:
        store, other_store = _client(certs, data_host.port), _client(certs, data_host.port)
        try:
            handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
            other = await other_store.open(unlocked.mailbox_id, unlocked.secrets)
            await handle.dav_create_collection("cal", "VCALENDAR")
            loop = asyncio.get_running_loop()
            inside, release = asyncio.Event(), threading.Event()

            def slow_request() -> None:
                box = handle.mailbox
                with box.dav_transaction():
                    box.dav_put_item("cal", _event("a.ics"))
                    loop.call_soon_threadsafe(inside.set)
                    release.wait(10)
                    box.dav_put_item("cal", _event("a.ics", "BEGIN:VCALENDAR\r\nX:1\r\nEND:VCALENDAR\r\n"))

            request = asyncio.ensure_future(handle.run(slow_request))
            await inside.wait()
            competing = asyncio.ensure_future(other.dav_put_item("cal", _event("a.ics"), if_none_match=True))
            await asyncio.sleep(0.5)
            assert not competing.done()  # held behind the transaction
            release.set()
            await request
            with pytest.raises(DavPreconditionFailed):
                await competing  # it ran after the commit, and saw a.ics
            await other.release()
            await handle.release()
        finally:
            await store.close()
            await other_store.close()

    asyncio.run(go())


# ---- a silent data host ---------------------------------------------------------------------------
def test_a_silent_store_costs_one_timeout_not_one_per_caller_then_fails_fast(certs) -> None:
    """A data host that accepts TCP but never answers (a hung or black-holed host): the callers
    waiting at that moment share one dial and its timeout, instead of dialling one after another
    (five callers would wait five timeouts); after it, calls fail at once for a back-off period, so
    the MX holds mail in its outbox without waiting again. (A refused dial has no back-off: the
    killed-store test above calls again the moment the store is back.)"""
    import socket
    import time

    tarpit = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never speaks TLS
    port = tarpit.getsockname()[1]

    async def go() -> None:
        store = RemoteMailStore(
            f"wss://localhost:{port}", client_tls(certs.ca, certs.client_cert, certs.client_key), timeout=1.0
        )
        try:
            started = time.monotonic()
            results = await asyncio.gather(*(store.call("spool_size", "x") for _ in range(5)), return_exceptions=True)
            shared = time.monotonic() - started
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert shared < 3.0, f"five waiting callers took {shared:.1f} s: they dialled one after another"
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="trying it again"):
                await store.call("spool_size", "x")
            assert time.monotonic() - started < 0.5
        finally:
            await store.close()

    try:
        asyncio.run(go())
    finally:
        tarpit.close()


def _upgrade(conn: ssl.SSLSocket, port: int) -> bytes:
    """A WebSocket upgrade request (RFC 6455 §4.1) written by hand on ``conn``, and the start of the answer."""
    import base64
    import os

    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall(
        f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return conn.recv(200)


def test_a_slow_handshake_is_waited_for_as_long_as_a_client_waits(data_host, certs, settings) -> None:
    """A front-end on a loaded host may take more than websockets' default 10 s between its TLS
    handshake and its HTTP upgrade request (RFC 6455 §4.1); it waits ``store_timeout`` (30 s) for
    the answer, so the store must not close the connection sooner: the client would see a broken
    handshake (InvalidMessage) and report the data host unreachable."""
    import socket
    import time

    tls = client_tls(certs.ca, certs.client_cert, certs.client_key)
    with socket.create_connection(("127.0.0.1", data_host.port), timeout=30) as raw:
        with tls.wrap_socket(raw, server_hostname="localhost") as conn:
            time.sleep(11)  # past the library's 10 s, well within store_timeout
            answer = _upgrade(conn, data_host.port)
    assert answer.startswith(b"HTTP/1.1 101"), answer


def test_the_store_sends_no_session_tickets_so_a_threaded_client_cannot_lose_its_request(data_host, certs) -> None:
    """RFC 8446 §4.6.1: a TLS 1.3 server may send NewSessionTicket after the client's Finished. A
    blocking client (the CLI's and the config store's, websockets' sync client) reads on one thread
    while it writes on another, and OpenSSL's connection object is not safe for that: when the ticket
    was being read as the upgrade request went out, the request was lost and both ends waited for the
    full 30 s (seen about once per thousand connections on a loaded machine). Nothing resumes
    sessions on this channel, so the store sends none."""
    import socket

    tls = client_tls(certs.ca, certs.client_cert, certs.client_key)
    with socket.create_connection(("127.0.0.1", data_host.port), timeout=30) as raw:
        with tls.wrap_socket(raw, server_hostname="localhost") as conn:
            assert conn.version() == "TLSv1.3"
            assert _upgrade(conn, data_host.port).startswith(b"HTTP/1.1 101")  # any ticket arrives before this
            session = conn.session
    assert session is None or not session.has_ticket
