"""Outbound SMTP benchmark: submission, DKIM signing, the durable queue and delivery to a remote MX.

    .venv/bin/python bench/smtp_outbound.py [--messages 2000] [--connections 4]

Three measurements in one run, against the same counting aiosmtpd sink standing in for the remote
MX (``mx.sink.test`` in a real DNS server, dnsmasq; STARTTLS with a private CA the sender trusts):

* the sink's raw ceiling: the messages sent straight to it over ``--connections`` sessions;
* submission: ``sealmail serve smtp`` as its own process; the messages go in over port 587 with
  STARTTLS and AUTH PLAIN over ``--connections`` sessions; each is DKIM-signed (RSA-2048 and
  Ed25519) and queued durably (fsync) before its ``250``. The delivery worker is not running yet,
  so this is submission alone;
* the queue draining: then ``sealmail serve jobs`` starts and delivers the queue to the sink (MX
  lookup, STARTTLS, one SMTP session per message and recipient as the worker does today); the
  drain time runs from the worker's start until the sink has counted every message.

Each message is ~2 KB of text to one of 50 recipients at sink.test. Print numbers, never assert on
them: load on this shared machine varies, so run it more than once. The target (the issue's) is a
queue that drains at 200 messages/s or more.

Needs: dnsmasq and redis-server (``scripts/system-deps test``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))  # bench/smtpkit.py before tests/smtpkit.py

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.settings import Settings
from sealmail.tls.devca import DevCertificates, ensure_dev_certificates

from corpus import vocabulary
from dnsserver import DnsServer
from smtpkit import (
    Mail,
    Run,
    blast,
    counting_sink,
    cpu_seconds,
    free_port,
    load,
    redis_server,
    sealmail_component,
    write_env_file,
)

DOMAIN = "a.test"
SENDER = f"alice@{DOMAIN}"
REMOTE = "sink.test"
RECIPIENTS = [f"user{i}@{REMOTE}" for i in range(50)]
SIZE = 2048


def make_mails(count: int) -> list[Mail]:
    rng = random.Random(20261124)
    words = vocabulary(rng)
    mails = []
    for n in range(count):
        rcpt = rng.choice(RECIPIENTS)
        head = (
            f"From: Alice <{SENDER}>\r\nTo: <{rcpt}>\r\n"
            f"Subject: {' '.join(rng.choices(words[:200], k=5)).capitalize()} #{n}\r\n"
            f"Date: Tue, 24 Nov 2026 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <out-{n}@{DOMAIN}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        body, length = [], len(head)
        while length < SIZE:
            line = " ".join(rng.choices(words[:2000], k=12)).encode() + b"\r\n"
            body.append(line)
            length += len(line)
        mails.append(Mail(SENDER, (rcpt,), head + b"".join(body)))
    return mails


def prepare(
    base: Path, dns: str, redis_url: str | None, certs: DevCertificates, sink_port: int
) -> tuple[Path, Settings, str]:
    data = base / "sealmail"
    values: dict[str, object] = {
        "SEALMAIL_DATA_DIR": data,
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_HOSTNAME": f"mail.{DOMAIN}",
        "SEALMAIL_SUBMISSION_PORT": free_port(),
        "SEALMAIL_SUBMISSION_TLS_PORT": free_port(),
        "SEALMAIL_TLS_CERT_FILE": certs.cert,
        "SEALMAIL_TLS_KEY_FILE": certs.key,
        "SEALMAIL_DNS_SERVERS": dns,
        "SEALMAIL_SMTP_RELAY_PORT": sink_port,
        "SEALMAIL_SMTP_CA_FILE": certs.ca_cert,
        "SEALMAIL_LOG_LEVEL": "INFO",  # one line per message, as in production
    }
    if redis_url:
        values["SEALMAIL_REDIS_URL"] = redis_url
    data.mkdir(mode=0o700)
    env_file = write_env_file(base / "sealmail.env", values)
    settings = Settings(data_dir=data)
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        domains.add_domain(store, DOMAIN, settings)
        aliases.add_alias(store, SENDER)
        password = credentials.set_password(store, settings, SENDER)
    finally:
        store.close()
    return env_file, settings, password


def row(name: str, run: Run) -> str:
    cpu = f"{run.cpu_ms:>8.2f}" if run.cpu_ms is not None else f"{'':>8}"
    return f"{name:<46} {run.rate:>8.0f} {run.percentile(50):>8.1f} {run.percentile(99):>8.1f} {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("dnsmasq") is None:
        sys.exit("bench/smtp_outbound.py needs dnsmasq: scripts/system-deps test (or apt-get install dnsmasq-base)")

    print(f"start: {load()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="sealmail-bench-smtp-out-", dir=os.environ.get("BENCH_TMP")))
    mails = make_mails(args.messages)
    results: list[str] = []
    dnsd = None
    try:
        certs = ensure_dev_certificates(base / "tls", names=(f"mail.{DOMAIN}", f"mx.{REMOTE}"))
        dnsd = DnsServer(base, ttl=300)
        dnsd.mx(REMOTE, f"mx.{REMOTE}")
        dnsd.a(f"mx.{REMOTE}", "127.0.0.1")
        dnsd.start()
        client_tls = ssl.create_default_context(cafile=str(certs.ca_cert))

        with counting_sink(free_port(), tls=(certs.cert, certs.key)) as ceiling_sink:
            ceiling = asyncio.run(blast(ceiling_sink.port, mails, args.connections, server_pid=ceiling_sink.pid))
        results.append(row("sink ceiling (aiosmtpd counting, plain)", ceiling))
        print(results[-1], flush=True)

        sink_port = free_port()
        with redis_server(base) as redis_url, counting_sink(sink_port, tls=(certs.cert, certs.key)) as sink:
            env_file, settings, password = prepare(base, dnsd.address, redis_url, certs, sink_port)
            with sealmail_component("smtp", env_file, settings.data_dir, base / "smtp.log") as (ports, pid):
                submitted = asyncio.run(
                    blast(
                        ports["submission"],
                        mails,
                        args.connections,
                        server_pid=pid,
                        tls=client_tls,
                        auth=(SENDER, password),
                        helo=f"laptop.{DOMAIN}",
                    )
                )
            results.append(row("Sealmail submission: STARTTLS, AUTH, DKIM, fsync", submitted))
            print(results[-1], flush=True)

            start = time.time()
            with sealmail_component("jobs", env_file, settings.data_dir, base / "jobs.log") as (_, jobs_pid):
                cpu_before = cpu_seconds(jobs_pid)
                count, first, last = sink.wait_for(len(mails), timeout=max(120.0, len(mails) / 5))
                jobs_cpu = cpu_seconds(jobs_pid) - cpu_before
            drain = last - start
    finally:
        if dnsd is not None:
            dnsd.stop()
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"\n{len(mails)} x ~{SIZE // 1024} KB messages over {args.connections} connections; latency: end of DATA to 250"
    )
    print(f"{'':<46} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>8}")
    for line in results:
        print(line)
    print(
        f"\nqueue drain: {count} of {len(mails)} delivered to the sink in {drain:.2f} s after the worker started "
        f"= {count / drain:.0f} msg/s (first arrival after {first - start:.2f} s; "
        f"worker CPU {1000 * jobs_cpu / max(count, 1):.2f} ms per message)"
    )
    if count < len(mails):
        print(f"INCOMPLETE: {len(mails) - count} messages did not reach the sink in time")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
