"""Webhooks: signed HTTPS POSTs, retried by the jobs worker until the receiver answers 2xx."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sealmail.appcontext import AppContext
from sealmail.config.models import LogQuery
from sealmail.jobs.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, WebhookWorker, load_webhook_secret
from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import aliases, domains
from sealmail.smtp.mx import MxComponent
from sealmail.tls.devca import ensure_dev_certificates

from support import free_port


class Receiver:
    """A local HTTPS endpoint (real TLS with the test CA) that records what it is sent."""

    def __init__(self, port: int, certs) -> None:
        self.port, self.certs = port, certs
        self.requests: list[tuple[dict, bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certs.cert, self.certs.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
async def setup(settings, config, tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls")
    port = free_port()
    settings = settings.model_copy(
        update={
            "mx_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "webhook_retry_base": 0.2,
            "webhook_timeout": 5.0,
            "webhook_ca_file": certs.ca_cert,
            "webhook_allow_private": True,  # the receiver is on loopback
        }
    )
    domains.add_domain(config, "example.test")
    aliases.add_alias(
        config, "hook@example.test", recipients=[f"https://localhost:{port}/incoming"], allow_private_webhooks=True
    )
    mx = MxComponent(settings)
    mx_port = (await mx.start())["mx"]
    receiver = Receiver(port, certs)
    yield settings, config, mx_port, receiver
    receiver.stop()
    await mx.stop()


async def _run_worker(settings, until, timeout: float = 20.0) -> None:
    app = AppContext(settings)
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    worker = WebhookWorker(app, queue)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await worker.close()
        queue.close()
        await app.close()


async def test_webhook_survives_a_down_receiver_and_arrives_once_signed(setup) -> None:
    settings, config, mx_port, receiver = setup
    raw = (
        "From: Alice <alice@example.org>\r\nTo: hook@example.test\r\nSubject: Webhook test é\r\n"
        "Message-ID: <w1@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello from the MX\r\n"
        '--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
    ).encode()

    def send():
        client = smtplib.SMTP("127.0.0.1", mx_port, timeout=10)
        try:
            return client.sendmail("alice@example.org", ["hook@example.test"], raw)
        finally:
            client.quit()

    assert await asyncio.to_thread(send) == {}

    # The receiver is down: the worker tries, logs, backs off; then it is stopped (a restart).
    def deferred() -> int:
        return len(config.query_logs(LogQuery(status="webhook-deferred")).entries)

    await _run_worker(settings, lambda: deferred() >= 2)
    assert deferred() >= 2
    assert receiver.requests == []

    # The receiver comes up; a new worker (after the "restart") delivers it, once.
    receiver.start()
    await _run_worker(settings, lambda: len(receiver.requests) == 1)
    await _run_worker(settings, lambda: False, timeout=1.0)  # nothing left to send
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    secret = load_webhook_secret(settings)
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    assert headers[DELIVERY_HEADER]
    doc = json.loads(body)
    assert doc["subject"] == "Webhook test é"
    assert doc["envelope"] == {"mail_from": "alice@example.org", "rcpt_to": ["hook@example.test"]}
    assert doc["text"].strip() == "Hello from the MX"
    assert doc["attachments"] == [
        {
            "filename": "a.bin",
            "content_type": "application/octet-stream",
            "size": 4,
            "sha256": hashlib.sha256(b"\0\1\2\3").hexdigest(),
        }
    ]
    assert base64.b64decode(doc["raw"]).endswith(raw)
    statuses = [e.status for e in config.query_logs(LogQuery(limit=100)).entries]
    assert statuses.count("webhook-delivered") == 1
    assert "queued-webhook" in statuses


class Listener:
    """A bare loopback TCP listener that only counts the connections it is offered."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _queue_webhook(settings, url: str) -> None:
    """Put one webhook job for ``url`` in the queue, as the MX does."""
    queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
    try:
        meta = {
            "url": url,
            "alias": "hook@example.test",
            "mail_from": "a@example.org",
            "rcpt_to": ["hook@example.test"],
        }
        queue.add("webhook", meta, b"Subject: hi\r\n\r\nbody\r\n")
    finally:
        queue.close()


@pytest.fixture
def dns_to_loopback(settings, config, tmp_path):
    """A real DNS server (dnsmasq) where hook.example.test is 127.0.0.1: a public-looking name, inward."""
    from dnsserver import DnsServer

    dnsd = DnsServer(tmp_path)
    dnsd.a("hook.example.test", "127.0.0.1")
    dnsd.start()
    certs = ensure_dev_certificates(tmp_path / "tls", names=("hook.example.test",))
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "webhook_retry_base": 0.2,
            "webhook_timeout": 5.0,
            "webhook_ca_file": certs.ca_cert,
        }
    )
    domains.add_domain(config, "example.test")
    yield settings, config, certs
    dnsd.stop()


async def test_a_name_resolving_to_loopback_is_refused_at_send_time(dns_to_loopback, caplog) -> None:
    """RFC 6890 §2.2.2: 127.0.0.0/8 is not global; the name is checked after resolution, nothing connects."""
    settings, config, _ = dns_to_loopback
    listener = Listener()
    try:
        url = f"https://hook.example.test:{listener.port}/in"
        # Saving is allowed: the name is not an address; what it resolves to is checked when sent.
        aliases.add_alias(config, "hook@example.test", recipients=[url])
        _queue_webhook(settings, url)

        def failed() -> list:
            return config.query_logs(LogQuery(status="webhook-failed")).entries

        with caplog.at_level("WARNING", logger="sealmail.jobs.webhooks"):
            await _run_worker(settings, lambda: bool(failed()), timeout=10.0)
        entries = failed()
        assert len(entries) == 1
        assert "refused" in entries[0].detail
        assert "127.0.0.1 is a loopback address" in entries[0].detail
        assert "127.0.0.1 is a loopback address" in caplog.text
        assert listener.accepted == 0
        assert config.query_logs(LogQuery(status="webhook-delivered")).entries == []
    finally:
        listener.close()


async def test_a_name_resolving_to_loopback_is_used_when_private_targets_are_allowed(dns_to_loopback) -> None:
    """With webhook_allow_private the pinned address is used, TLS still verified for the host name (SNI)."""
    settings, _config, certs = dns_to_loopback
    settings = settings.model_copy(update={"webhook_allow_private": True})
    port = free_port()
    receiver = Receiver(port, certs)
    receiver.start()
    try:
        _queue_webhook(settings, f"https://hook.example.test:{port}/in")
        await _run_worker(settings, lambda: len(receiver.requests) == 1, timeout=10.0)
        assert len(receiver.requests) == 1
        assert receiver.requests[0][0]["Host"] == f"hook.example.test:{port}"
    finally:
        receiver.stop()


async def test_http_and_literal_targets_saved_before_the_policy_fail_without_connecting(settings, config) -> None:
    """A job queued for a forbidden URL (e.g. saved by an older version) fails at once, unconnected."""
    listener = Listener()
    try:
        domains.add_domain(config, "example.test")
        _queue_webhook(settings, f"http://127.0.0.1:{listener.port}/in")
        _queue_webhook(settings, f"https://[::ffff:127.0.0.1]:{listener.port}/in")

        def failed() -> list:
            return config.query_logs(LogQuery(status="webhook-failed")).entries

        await _run_worker(settings, lambda: len(failed()) == 2, timeout=10.0)
        details = sorted(e.detail for e in failed())
        assert "only https://" in details[0] or "only https://" in details[1]
        assert any("loopback" in d for d in details)
        assert listener.accepted == 0
    finally:
        listener.close()
