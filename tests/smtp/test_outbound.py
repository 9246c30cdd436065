"""Submission to remote delivery, end to end: real DNS (dnsmasq), a second SMTP server, swaks, MTA-STS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import dkim
import dns.resolver
import pytest

from sealmail.config.models import LogQuery
from sealmail.jobs.component import JobsComponent
from sealmail.services import aliases, credentials, domains
from sealmail.services.dnsrecords import records_for
from sealmail.smtp.submission import SubmissionComponent
from sealmail.tls.devca import ensure_dev_certificates

from dnsserver import DnsServer
from policyserver import PolicyServer
from privacyscan import Secrets, assert_no_secrets
from smtpkit import auth_plain, inbox, swaks, verified_tls
from smtpsink import Sink
from support import free_port

pytestmark = pytest.mark.tool("dnsmasq")


@pytest.fixture
async def world(settings, config, tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls", names=("mail.a.test", "mx.b.test", "mx.c.test", "mta-sts.c.test"))
    sink_port, sts_port = free_port(), free_port()
    dnsd = DnsServer(tmp_path)
    settings = settings.model_copy(
        update={
            "domain": "a.test",
            "hostname": "mail.a.test",
            "bind_addresses": ["127.0.0.1"],
            "submission_port": 0,
            "submission_tls_port": 0,
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "dns_servers": [dnsd.address],
            "smtp_relay_port": sink_port,
            "smtp_ca_file": certs.ca_cert,
            "mta_sts_port": sts_port,
            "smtp_retry_base": 0.3,
            "smtp_timeout": 5.0,
        }
    )
    domains.add_domain(config, "a.test", settings)
    aliases.add_alias(config, "alice@a.test")
    password = credentials.set_password(config, settings, "alice@a.test")
    domains.add_domain(config, "universitéxyz.fr", settings)
    aliases.add_alias(config, "rémi@universitéxyz.fr")
    remi_password = credentials.set_password(config, settings, "rémi@universitéxyz.fr")
    for record in records_for(settings, "a.test"):
        if record.type == "TXT":
            dnsd.txt(record.name, record.value)
    dnsd.mx("a.test", "mail.a.test")
    dnsd.a("mail.a.test", "127.0.0.1")
    dnsd.mx("b.test", "mx.b.test")
    dnsd.a("mx.b.test", "127.0.0.1")
    dnsd.mx("c.test", "mx.c.test")
    dnsd.a("mx.c.test", "127.0.0.1")
    dnsd.txt("_mta-sts.c.test", "v=STSv1; id=20261123")
    dnsd.a("mta-sts.c.test", "127.0.0.1")
    dnsd.start()
    policy = PolicyServer(sts_port, certs, "version: STSv1\nmode: enforce\nmx: other.c.test\nmax_age: 86400\n")
    sink_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sink_tls.load_cert_chain(certs.cert, certs.key)
    sink = Sink(sink_port, sink_tls)
    await sink.start()
    submission = SubmissionComponent(settings)
    ports = await submission.start()
    jobs = JobsComponent(settings)
    await jobs.start()

    class World:
        pass

    w = World()
    w.settings, w.config, w.password, w.sink, w.dns, w.ca = settings, config, password, sink, dnsd, str(certs.ca_cert)
    w.remi_password = remi_password
    w.port = ports["submission"]
    w.jobs = jobs
    yield w
    await w.jobs.stop()
    await submission.stop()
    await sink.stop()
    policy.stop()
    dnsd.stop()


async def _swaks(w, to: str, *extra: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        swaks,
        w.port,
        *verified_tls(w.ca),
        *auth_plain("alice@a.test", w.password),
        *("--from", "alice@a.test", "--to", to),
        *("--header", "From: Alice <alice@a.test>", "--header", "Subject: outbound test"),
        *extra,
    )


async def _until(predicate, timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.1)
    return False


def _inbox(w, address: str, password: str) -> list[bytes]:
    return inbox(w.settings, w.config, address, password)


def _statuses(config) -> list[str]:
    return [f"{e.status}: {e.detail}" for e in config.query_logs(LogQuery(limit=500)).entries]


@pytest.mark.tool("swaks")
async def test_alice_submits_with_swaks_and_bob_receives_it_signed(world) -> None:
    result = await _swaks(world, "bob@b.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(lambda: len(world.sink.received) == 1)
    got = world.sink.received[0]
    assert got.rcpt_tos == ["bob@b.test"]
    assert got.mail_from == "alice@a.test"
    assert got.tls  # opportunistic STARTTLS was used
    resolver = dns.resolver.Resolver(configure=False)
    host, port = world.dns.address.split(":")
    resolver.nameservers, resolver.port = [host], int(port)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(answer[0].strings)

    verifier = dkim.DKIM(got.data)
    assert verifier.verify(idx=0, dnsfunc=dnsfunc)
    assert verifier.verify(idx=1, dnsfunc=dnsfunc)
    # The sink has the message before the worker has logged the 250: wait for the log line.
    assert await _until(
        lambda: any("delivered" in s and "via mx.b.test with TLS" in s for s in _statuses(world.config))
    )


@pytest.mark.tool("swaks")
async def test_messages_to_one_host_share_a_session(world) -> None:
    """RFC 5321 §3.3: one session may carry many transactions; a delivered session is reused (after RSET)."""
    for n in range(3):
        result = await _swaks(world, f"bob{n}@b.test")
        assert result.returncode == 0, result.stdout + result.stderr
        assert await _until(lambda n=n: len(world.sink.received) == n + 1)
    assert [r.rcpt_tos for r in world.sink.received] == [["bob0@b.test"], ["bob1@b.test"], ["bob2@b.test"]]
    assert all(r.tls for r in world.sink.received)
    assert len({r.peer for r in world.sink.received}) == 1  # one TCP connection carried all three


@pytest.mark.tool("swaks")
async def test_a_session_closed_by_the_receiver_is_not_reused(world) -> None:
    """A cached session the remote has dropped fails its RSET; the message goes over a new one, at once."""
    result = await _swaks(world, "bob@b.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(lambda: len(world.sink.received) == 1)
    await world.sink.stop()
    await world.sink.start()  # a restarted receiver: every old connection is gone
    result = await _swaks(world, "carl@b.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(lambda: len(world.sink.received) == 2, timeout=10)
    assert world.sink.received[1].peer != world.sink.received[0].peer
    assert not any(s.startswith("deferred") for s in _statuses(world.config))


@pytest.mark.tool("swaks")
async def test_receiver_down_then_up_and_worker_restarted_delivers_once(world) -> None:
    await world.sink.stop()
    result = await _swaks(world, "bob@b.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(lambda: any(s.startswith("deferred") for s in _statuses(world.config)))
    await world.jobs.stop()  # the worker goes away with the job still queued
    await world.sink.start()
    world.jobs = JobsComponent(world.settings)
    await world.jobs.start()
    assert await _until(lambda: len(world.sink.received) == 1)
    await asyncio.sleep(1.0)
    assert len(world.sink.received) == 1


@pytest.mark.tool("swaks")
async def test_permanent_failure_sends_a_dsn_to_alices_inbox(world) -> None:
    world.sink.replies["nobody@b.test"] = "550 5.1.1 No such user here"
    result = await _swaks(world, "nobody@b.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(lambda: any(s.startswith("bounced") for s in _statuses(world.config))), _statuses(world.config)

    assert await _until(lambda: len(_inbox(world, "alice@a.test", world.password)) == 1)
    (dsn,) = _inbox(world, "alice@a.test", world.password)
    assert b"multipart/report; report-type=delivery-status" in dsn
    assert b"Final-Recipient: rfc822; nobody@b.test" in dsn
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user here" in dsn
    assert b"Status: 5.1.1" in dsn


def _submit(w, to: str, subject: str, body: str) -> None:
    """RFC 6409 submission over STARTTLS (RFC 3207) with AUTH PLAIN (RFC 4954), by smtplib."""
    import smtplib

    # The Message-ID goes into the delivery log (metadata the operator sees), so it carries no marker.
    raw = (
        f"From: Alice <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@a.test>\r\n\r\n{body}\r\n{body}, said twice.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", w.port, timeout=20) as client:
        client.starttls(context=ssl.create_default_context(cafile=w.ca))
        client.login("alice@a.test", w.password)
        assert client.sendmail("alice@a.test", [to], raw) == {}


async def test_submission_queue_delivery_and_bounce_leave_no_text_key_or_password_on_disk(world) -> None:
    """DESIGN §4: a submitted message waiting in the outbound queue (receiver down), delivered, and
    bounced back as a DSN into the sender's sealed spool and drained: at every step no file under
    the data directory holds its text, a password or a mailbox key."""
    w = world
    secrets = Secrets().password("alice's password", w.password).password("rémi's password", w.remi_password)
    for address, password in (("alice@a.test", w.password), ("rémi@universitéxyz.fr", w.remi_password)):
        secrets.unlocked(address, credentials.unlock(w.config, w.settings, address, password))
    first = ("Subject-Queued-Wombat-2290", "Body-Queued-Marimba-8164")
    second = ("Subject-Bounced-Axolotl-4471", "Body-Bounced-Ocarina-3385")
    for subject, body in (first, second):
        secrets.text("message subject", subject).text("message body", body)

    await w.sink.stop()
    await asyncio.to_thread(_submit, w, "bob@b.test", *first)
    assert await _until(lambda: any(s.startswith("deferred") for s in _statuses(w.config)))
    assert_no_secrets(w.settings.data_dir, secrets, min_files=3)  # waiting in the queue
    await w.sink.start()
    assert await _until(lambda: len(w.sink.received) == 1)
    assert first[1].encode() in w.sink.received[0].data
    assert_no_secrets(w.settings.data_dir, secrets)  # delivered

    w.sink.replies["nobody@b.test"] = "550 5.1.1 No such user here"
    await asyncio.to_thread(_submit, w, "nobody@b.test", *second)
    assert await _until(lambda: any(s.startswith("bounced") for s in _statuses(w.config)))
    assert await _until(lambda: len(_inbox(w, "alice@a.test", w.password)) == 1)
    (dsn,) = _inbox(w, "alice@a.test", w.password)
    assert second[0].encode() in dsn  # the DSN returned the headers: the sealed spool and the mailbox held them
    assert_no_secrets(w.settings.data_dir, secrets)  # bounced, sealed, drained


@pytest.mark.tool("swaks")
async def test_mta_sts_enforce_with_a_mismatching_mx_is_not_delivered(world) -> None:
    result = await _swaks(world, "carol@c.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert await _until(
        lambda: any("MTA-STS: mx.c.test is not in c.test's policy" in s for s in _statuses(world.config))
    )
    assert world.sink.received == []


async def test_no_smtputf8_at_the_destination_bounces_instead_of_mangling(world) -> None:
    """RFC 6531 §3.5: a message that needs SMTPUTF8 is not downgraded; the sender gets 5.6.7."""
    import base64
    import smtplib

    world.sink.smtputf8 = False
    message = "From: Rémi <rémi@universitéxyz.fr>\r\nTo: bob@b.test\r\nSubject: Ça\r\n\r\nBonjour\r\n".encode()

    def send():
        with smtplib.SMTP("127.0.0.1", world.port, timeout=10) as c:
            c.starttls(context=ssl.create_default_context(cafile=world.ca))
            c.ehlo("client.example")
            token = base64.b64encode("\0rémi@universitéxyz.fr\0".encode() + world.remi_password.encode())
            assert c.docmd("AUTH", "PLAIN " + token.decode())[0] == 235
            return c.sendmail("rémi@universitéxyz.fr", ["bob@b.test"], message, mail_options=["SMTPUTF8"])

    assert await asyncio.to_thread(send) == {}
    assert await _until(lambda: len(_inbox(world, "rémi@universitéxyz.fr", world.remi_password)) == 1)
    (dsn,) = _inbox(world, "rémi@universitéxyz.fr", world.remi_password)
    assert b"Status: 5.6.7" in dsn
    assert b"does not support SMTPUTF8" in dsn
    assert world.sink.received == []
