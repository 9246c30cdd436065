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
        }
    )
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "hook@example.test", recipients=[f"https://localhost:{port}/incoming"])
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
