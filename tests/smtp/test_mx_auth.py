"""The MX authenticates senders against a real DNS server (dnsmasq), and forwards with SRS and ARC."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from sealmail.jobs.component import JobsComponent
from sealmail.mailauth.checks import check_arc
from sealmail.mailauth.dnsview import ResolverDns
from sealmail.net.dns import parse_server
from sealmail.services import aliases, credentials, domains
from sealmail.services.dkim import ensure_keys
from sealmail.services.dnsrecords import records_for
from sealmail.settings import Settings
from sealmail.smtp import dkimsign
from sealmail.smtp.mx import MxComponent

import cleandkim
from dnsserver import DnsServer
from smtpkit import folder
from smtpsink import Sink
from support import free_port

pytestmark = pytest.mark.tool("dnsmasq")


@pytest.fixture
async def mx(settings, config, tmp_path):
    sender = Settings(data_dir=tmp_path / "sender-side")  # the other organisation's DKIM keys
    ensure_keys(sender, "sender.test")
    dnsd = DnsServer(tmp_path)
    for record in records_for(sender, "sender.test"):
        if record.type == "TXT" and "_domainkey" in record.name:
            dnsd.txt(record.name, record.value)  # a 2048-bit RSA key: longer than one 255-byte string
    dnsd.txt("sender.test", "v=spf1 ip4:127.0.0.1 -all")
    dnsd.txt("_dmarc.sender.test", "v=DMARC1; p=reject")
    dnsd.txt("_dmarc.careful.test", "v=DMARC1; p=quarantine")
    dnsd.txt("careful.test", "v=spf1 -all")
    dnsd.mx("b.test", "mx.b.test")
    dnsd.a("mx.b.test", "127.0.0.1")
    sink = Sink(free_port())
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "hostname": "mx.example.test",
            "smtp_relay_port": sink.port,
            "smtp_retry_base": 0.3,
            "smtp_timeout": 5.0,
        }
    )
    domains.add_domain(config, "example.test", settings)
    for record in records_for(settings, "example.test"):
        if record.type == "TXT" and "_domainkey" in record.name:
            dnsd.txt(record.name, record.value)  # so the forwarded copy's ARC seal can be checked
    dnsd.start()
    await sink.start()
    aliases.add_alias(config, "demo@example.test")
    aliases.add_alias(config, "fwd@example.test", recipients=["bob@b.test"])
    password = credentials.set_password(config, settings, "demo@example.test")
    component = MxComponent(settings)
    port = (await component.start())["mx"]
    jobs = JobsComponent(settings)
    await jobs.start()

    class World:
        pass

    w = World()
    w.port, w.settings, w.sender, w.password, w.sink, w.dns, w.config = (
        port,
        settings,
        sender,
        password,
        sink,
        dnsd,
        config,
    )
    yield w
    await jobs.stop()
    await component.stop()
    await sink.stop()
    dnsd.stop()


def _send(port: int, mail_from: str, rcpt: str, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("mail.sender.test")
        client.mail(mail_from)
        client.rcpt(rcpt)
        return client.data(raw)


def _folder(w, name: str) -> list[bytes]:
    return folder(w.settings, w.config, "demo@example.test", w.password, name)


def _message(sender_domain: str, subject: str) -> bytes:
    return (
        f"From: Sender <news@{sender_domain}>\r\nTo: demo@example.test\r\nSubject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '-')}@{sender_domain}>\r\n\r\nHello.\r\n"
    ).encode()


async def test_authenticated_mail_passes_spf_dkim_and_dmarc(mx) -> None:
    signed = dkimsign.sign(mx.sender, "sender.test", _message("sender.test", "signed"))
    forged = b"Authentication-Results: mx.example.test; dkim=pass header.d=bank.test\r\n" + signed
    code, _ = await asyncio.to_thread(_send, mx.port, "bounces@sender.test", "demo@example.test", forged)
    assert code == 250
    (stored,) = _folder(mx, "INBOX")
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    assert "spf=pass smtp.mailfrom=sender.test" in head
    assert head.count("dkim=pass header.d=sender.test") == 2  # RSA (long TXT) and Ed25519
    assert "dmarc=pass (p=reject dis=none) header.from=sender.test" in head
    assert "header.d=bank.test" not in head  # the forged result claiming our id is gone (RFC 8601 §5)
    assert head.count("Authentication-Results: mx.example.test") == 1


async def test_dmarc_reject_policy_refuses_forged_mail(mx) -> None:
    """RFC 7489 §6.6.4: p=reject and no aligned pass: 550 5.7.1."""
    code, reply = await asyncio.to_thread(
        _send, mx.port, "someone@elsewhere.test", "demo@example.test", _message("sender.test", "forged")
    )
    assert code == 550
    assert reply.startswith(b"5.7.1 Rejected by the DMARC policy of sender.test")
    assert _folder(mx, "INBOX") == []


async def test_dmarc_quarantine_policy_delivers_to_junk(mx) -> None:
    code, _ = await asyncio.to_thread(
        _send, mx.port, "x@careful.test", "demo@example.test", _message("careful.test", "suspicious")
    )
    assert code == 250
    assert _folder(mx, "INBOX") == []
    (junk,) = _folder(mx, "Junk")
    assert b"dmarc=fail (p=quarantine dis=quarantine)" in junk


async def _until(predicate, timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_forwarded_mail_gets_srs_and_an_arc_seal_and_bounces_come_back(mx) -> None:
    signed = dkimsign.sign(mx.sender, "sender.test", _message("sender.test", "to forward"))
    code, _ = await asyncio.to_thread(_send, mx.port, "news@sender.test", "fwd@example.test", signed)
    assert code == 250
    assert await _until(lambda: len(mx.sink.received) == 1)
    copy = mx.sink.received[0]
    assert copy.rcpt_tos == ["bob@b.test"]
    assert copy.mail_from.startswith("SRS0=")
    assert copy.mail_from.endswith("@example.test")  # SPF at the destination checks our domain now
    assert copy.data.startswith(b"ARC-Seal: i=1;")
    view = ResolverDns([parse_server(mx.dns.address)])
    assert check_arc(view, copy.data) == "pass"
    # and at a verifier that does not share our patched dkimpy (RFC 8617 §5.2); the sender's own
    # DKIM signatures still pass after forwarding too
    lines = await asyncio.to_thread(cleandkim.verify, copy.data, dns=mx.dns.address, arc=True)
    assert cleandkim.verdicts(lines) == ["ed25519-sha256 pass", "rsa-sha256 pass", "arc pass"], lines

    # The destination bounces to the SRS address: the bounce goes back to the original sender.
    bounce = b"From: MAILER-DAEMON@b.test\r\nTo: x\r\nSubject: Undeliverable\r\n\r\nsorry\r\n"
    mx.dns.mx("sender.test", "mx.b.test")  # the original sender's mail also lands on the sink
    mx.dns.restart()
    code, _ = await asyncio.to_thread(_send, mx.port, "<>", copy.mail_from, bounce)
    assert code == 250
    assert await _until(lambda: len(mx.sink.received) == 2)
    returned = mx.sink.received[1]
    assert returned.rcpt_tos == ["news@sender.test"]
    assert returned.mail_from in ("", "<>")  # the null sender, as aiosmtpd spells it


def _bounce_to(port: int, *rcpts: str) -> tuple[list[tuple[int, bytes]], tuple[int, bytes] | None]:
    """A bounce (null sender) to ``rcpts``: the RCPT replies, then the DATA reply when one was taken."""
    bounce = b"From: MAILER-DAEMON@b.test\r\nTo: x\r\nSubject: Undeliverable\r\n\r\nsorry\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("x.test")
        client.mail("")
        replies = [client.rcpt(r) for r in rcpts]
        if not any(code == 250 for code, _ in replies):
            return replies, None
        try:
            return replies, client.data(bounce)
        except smtplib.SMTPDataError as exc:
            return replies, (exc.smtp_code, exc.smtp_error)


async def test_forged_srs_bounces_are_refused_after_data_not_at_rcpt(mx) -> None:
    """RFC 5321 §3.3 lets a server accept a recipient it checks later, and §7.3 wants it to reveal
    no more than it must: a well-formed SRS address gets 250 at RCPT whatever its hash, so RCPT
    replies are no oracle for guessing hashes (100 guesses in one transaction tell nothing); a wrong
    hash is refused after DATA with 550 5.7.1 (§4.2.5: one reply for the whole transaction)."""
    guesses = [f"SRS0=AAAAAAAAA{c}=AB=victim.test=someone@example.test" for c in "BCDEF"]
    replies, data = await asyncio.to_thread(_bounce_to, mx.port, *guesses)
    assert [code for code, _ in replies] == [250] * 5
    assert data is not None
    assert data[0] == 550
    assert data[1].startswith(b"5.7.1")
    await asyncio.sleep(0.5)
    assert mx.sink.received == []


async def test_expired_and_old_format_srs_addresses_are_refused(mx) -> None:
    """An address of ours past its 21 days is refused like a forged one (after DATA); an address
    in the earlier 4-character-hash format, or otherwise malformed, is refused at RCPT (its form is
    public knowledge, so that answer reveals nothing about the secret)."""
    import time

    from sealmail.smtp.forwarding import load_srs

    srs = load_srs(mx.settings)
    expired = srs.forward("news@sender.test", "example.test", now=time.time() - 30 * 86400)
    fresh = srs.forward("news@sender.test", "example.test")
    replies, data = await asyncio.to_thread(_bounce_to, mx.port, expired)
    assert replies[0][0] == 250
    assert data is not None
    assert data[0] == 550
    assert data[1].startswith(b"5.7.1")
    for malformed in ("SRS0=abcd=AB=victim.test=someone@example.test", "SRS0=junk@example.test"):
        replies, data = await asyncio.to_thread(_bounce_to, mx.port, malformed)
        assert replies[0][0] == 550
        assert data is None
    # A good one in the same transaction as a forged one: the whole transaction is refused.
    replies, data = await asyncio.to_thread(_bounce_to, mx.port, fresh, "SRS0=AAAAAAAAAA=AB=v.test=x@example.test")
    assert [code for code, _ in replies] == [250, 250]
    assert data is not None
    assert data[0] == 550
    await asyncio.sleep(0.5)
    assert mx.sink.received == []
