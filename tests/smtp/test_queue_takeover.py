"""Issue 19: in multi-server mode the job queue lives on the data host, so a job queued by a front-end
that dies is delivered by another front-end's ``jobs`` worker.

Real parts: ``sealmail serve store`` (the data host, its queue offered through the store's channel)
and ``sealmail serve mx`` (front-end A) as processes, A killed with SIGKILL right after its ``250``;
front-end B's jobs component delivers the forwarded copy to an independent SMTP receiver
(``smtpsink``) found through a real DNS server (RFC 5321 §5.1: the MX record of the recipient's
domain).
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest
from storekit import StoreProcess, client_settings, store_certs

from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import aliases, domains

from dnsserver import DnsServer
from privacyscan import Secrets, assert_no_secrets
from smtpsink import Sink
from support import ComponentThread, free_port, wait_for

pytestmark = pytest.mark.slow
MARKER = "wombat-queue-marker"
MESSAGE = (f"From: <a@example.org>\r\nTo: <fwd@example.test>\r\nSubject: {MARKER}\r\n\r\n{MARKER} body\r\n").encode()


class LoopThread:
    """An event loop on its own thread (the sink runs there)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _front(tmp_path, name: str, settings):
    front = tmp_path / name
    front.mkdir()
    (front / "config.sqlite").symlink_to(settings.config_db_path)  # the shared config store
    return front


def test_a_job_queued_by_a_front_end_that_dies_is_delivered_by_another(
    settings, config, redis_url, sealmail_bin, clean_env, tmp_path
) -> None:
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "fwd@example.test", recipients=["bob@b.test"])
    certs = store_certs(tmp_path / "tls")
    store = StoreProcess(sealmail_bin, settings.data_dir, certs, free_port(), tmp_path / "store.log", redis_url)
    store.start()
    dnsd = DnsServer(tmp_path)
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.mx("b.test", "mx.b.test")
    dnsd.a("mx.b.test", "127.0.0.1")
    dnsd.start()
    sink_port, mx_port = free_port(), free_port()
    loop = LoopThread()
    sink = Sink(sink_port)
    loop.call(sink.start())
    front_a = _front(tmp_path, "front-a", settings)
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(front_a),
        "SEALMAIL_MX_PORT": str(mx_port),
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PROCESSES": "1",
        "SEALMAIL_MX_AUTH_WORKERS": "1",
        "SEALMAIL_HOSTNAME": "mx-a.example.test",
        "SEALMAIL_DNS_SERVERS": dnsd.address,
        "SEALMAIL_REDIS_URL": redis_url,
        "SEALMAIL_STORE_URL": f"wss://localhost:{store.port}",
        "SEALMAIL_STORE_CA_FILE": str(certs.ca),
        "SEALMAIL_STORE_CLIENT_CERT_FILE": str(certs.client_cert),
        "SEALMAIL_STORE_CLIENT_KEY_FILE": str(certs.client_key),
    }
    with (tmp_path / "front-a.log").open("wb") as log:
        front_a_proc = subprocess.Popen(
            [sealmail_bin, "serve", "mx"], env=env, stdout=log, stderr=log, start_new_session=True
        )
    jobs_b = None
    try:

        def listening() -> bool:
            assert front_a_proc.poll() is None, (tmp_path / "front-a.log").read_text()[-2000:]
            try:
                socket.create_connection(("127.0.0.1", mx_port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=60, what="front-end A's MX")
        with smtplib.SMTP("127.0.0.1", mx_port, timeout=30) as client:
            client.sendmail("a@example.org", ["fwd@example.test"], MESSAGE)  # 250: the forward is queued
        os.killpg(front_a_proc.pid, signal.SIGKILL)  # front-end A dies; it never ran a jobs worker
        front_a_proc.wait(10)
        # the job is on the data host, sealed; nothing of it is on A
        data_queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
        try:
            assert data_queue.counts() == {"smtp:pending": 1}
        finally:
            data_queue.close()
        assert not (front_a / "queue.sqlite").exists()
        assert_no_secrets(settings.data_dir, Secrets().text("text", MARKER))
        assert_no_secrets(front_a, Secrets().text("text", MARKER))
        # front-end B's jobs component takes the job over and delivers it
        front_b = _front(tmp_path, "front-b", settings)
        b_settings = client_settings(settings, certs, store.port).model_copy(
            update={
                "data_dir": front_b,
                "dns_servers": [dnsd.address],
                "smtp_relay_port": sink_port,
                "smtp_timeout": 5.0,
                "hostname": "mx-b.example.test",
            }
        )
        started = time.monotonic()
        jobs_b = ComponentThread("jobs", b_settings)
        got = wait_for(lambda: sink.received, timeout=60, what="the forwarded copy at the receiver")
        assert time.monotonic() - started < 60
        assert len(got) == 1
        assert got[0].rcpt_tos == ["bob@b.test"]
        assert MARKER.encode() in got[0].data
        data_queue = JobQueue(settings.data_dir / "queue.sqlite", load_queue_key(settings.data_dir))
        try:
            wait_for(lambda: data_queue.counts() == {"smtp:done": 1}, timeout=10, what="the job marked done")
        finally:
            data_queue.close()
    finally:
        if jobs_b is not None:
            jobs_b.stop()
        if front_a_proc.poll() is None:
            os.killpg(front_a_proc.pid, signal.SIGKILL)
            front_a_proc.wait(10)
        loop.call(sink.stop())
        loop.stop()
        store.stop()
        dnsd.stop()
