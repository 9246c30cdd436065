"""Outbound mail is signed exactly as it is sent, checked by a verifier none of us wrote.

Tricky messages go the real way — submission (STARTTLS + AUTH) or the MX's forwarding path, the
outbound queue, the delivery worker — to an SMTP sink on loopback. The bytes the sink received are
handed to two verifiers from Debian:

* Mail::DKIM (``tests/dkimverify.pl``, keys fetched from the test's dnsmasq): the RSA signature
  and the ARC set of a forwarded copy (RFC 8617). Bookworm's Mail::DKIM (1.20230212) has no
  Ed25519 yet: it reports those signatures "invalid (unsupported algorithm)".
* OpenDKIM 2.11 (``opendkim -t``, keys from its ``TestPublicKeys`` file): the RSA and the Ed25519
  signature (RFC 8463).

and to dkimpy as shipped, in a clean interpreter that does not load sealmail's patches to it
(``tests/cleandkim.py``, keys from the dnsmasq): RSA, Ed25519 and the ARC chain.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from sealmail.jobs.component import JobsComponent
from sealmail.services import aliases, credentials, domains
from sealmail.services.dnsrecords import records_for
from sealmail.smtp.mx import MxComponent
from sealmail.smtp.submission import SubmissionComponent
from sealmail.tls.devca import ensure_dev_certificates

import cleandkim
from dnsserver import DnsServer
from smtpsink import Sink
from support import free_port, missing

VERIFIER = Path(__file__).resolve().parents[1] / "dkimverify.pl"


def _have_mail_dkim() -> bool:
    if shutil.which("perl") is None:
        return False
    probe = ["perl", "-MMail::DKIM::Verifier", "-MMail::DKIM::ARC::Verifier", "-MCrypt::PK::Ed25519", "-e1"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.tool("dnsmasq", "opendkim", "perl")


@pytest.fixture(autouse=True)
def _mail_dkim() -> None:
    """The Perl verifier's modules: as for a tool, a failure under CI=true, else a skip."""
    if not _have_mail_dkim():
        missing("Perl's Mail::DKIM and CryptX", "libmail-dkim-perl libcryptx-perl")


HEAD = "From: Alice <alice@a.test>\r\nTo: Bob <bob@b.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
LONG = "Subject: " + " ".join(f"word{n:03d}" for n in range(60))
FOLDED = "\r\n\t".join(LONG[i : i + 70] for i in range(0, len(LONG), 70))
TRICKY: dict[str, tuple[bytes, bool]] = {  # name: (message, needs SMTPUTF8)
    "bare CR in the body": ((HEAD + "Subject: cr\r\n\r\nline one\rstill line one\r\nend\r\n").encode(), False),
    "bare LF everywhere": (
        (HEAD + "Subject: lf\r\n\r\nline one\r\nline two\r\n").replace("\r\n", "\n").encode(),
        False,
    ),
    "bare LF and CR mixed": ((HEAD + "Subject: mixed\n\r\nbody\nmore\r\rlast").encode(), False),
    "VT and FF at both ends of Subject": ((HEAD + "Subject: \x0bvertical\x0b\r\n\r\nbody\r\n").encode(), False),
    "FF at both ends of Subject": ((HEAD + "Subject:\x0c form feed \x0c\r\n\r\nbody\r\n").encode(), False),
    "long folded header": ((HEAD + FOLDED + "\r\n\r\nbody\r\n").encode(), False),
    "UTF-8 headers (SMTPUTF8)": (
        (HEAD.replace("Bob", "Bjørn Ærø") + "Subject: Ça va ? ✓ 日本語\r\n\r\nCorps été\r\n").encode(),
        True,
    ),
    "trailing empty lines": ((HEAD + "Subject: trailing\r\n\r\nbody\r\n\r\n\r\n\r\n").encode(), False),
    "everything at once": (
        (HEAD + "Subject: \x0c Ça\x0b\r\n\r\nline\rone\nline two \t \r\n\r\n\r\n").encode(),
        True,
    ),
}


@pytest.fixture
async def world(settings, config, tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls", names=("mail.a.test", "mx.b.test"))
    sink = Sink(free_port())
    dnsd = DnsServer(tmp_path)
    settings = settings.model_copy(
        update={
            "domain": "a.test",
            "hostname": "mail.a.test",
            "bind_addresses": ["127.0.0.1"],
            "submission_port": 0,
            "submission_tls_port": 0,
            "mx_port": 0,
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "dns_servers": [dnsd.address],
            "smtp_relay_port": sink.port,
            "smtp_retry_base": 0.3,
            "smtp_timeout": 5.0,
        }
    )
    domains.add_domain(config, "a.test", settings)
    aliases.add_alias(config, "alice@a.test")
    aliases.add_alias(config, "fwd@a.test", recipients=["bob@b.test"])
    password = credentials.set_password(config, settings, "alice@a.test")
    keys = []
    for record in records_for(settings, "a.test"):
        if record.type == "TXT" and "_domainkey" in record.name:
            dnsd.txt(record.name, record.value)  # the RSA-2048 and the Ed25519 key
            keys.append(f"{record.name} {record.value}\n")
    (tmp_path / "opendkim.keys").write_text("".join(keys))
    (tmp_path / "opendkim.conf").write_text(
        f"Mode v\nSyslog no\nAuthservID verifier.test\nAlwaysAddARHeader yes\nTestPublicKeys {tmp_path / 'opendkim.keys'}\n"
    )
    dnsd.txt("sender.test", "v=spf1 ip4:127.0.0.1 -all")
    dnsd.mx("b.test", "mx.b.test")
    dnsd.a("mx.b.test", "127.0.0.1")
    dnsd.start()
    await sink.start()
    submission = SubmissionComponent(settings)
    ports = await submission.start()
    mx = MxComponent(settings)
    mx_port = (await mx.start())["mx"]
    jobs = JobsComponent(settings)
    await jobs.start()

    class World:
        pass

    w = World()
    w.settings, w.password, w.sink, w.dns, w.ca = settings, password, sink, dnsd, str(certs.ca_cert)
    w.port, w.mx_port = ports["submission"], mx_port
    w.opendkim_conf = tmp_path / "opendkim.conf"
    yield w
    await jobs.stop()
    await mx.stop()
    await submission.stop()
    await sink.stop()
    dnsd.stop()


def _submit(w, message: bytes, utf8: bool) -> None:
    """smtplib sends bytes as given: bare CR and bare LF reach the server untouched."""
    with smtplib.SMTP("127.0.0.1", w.port, timeout=20) as client:
        client.starttls(context=ssl.create_default_context(cafile=w.ca))
        client.ehlo("client.example")
        token = base64.b64encode(b"\0alice@a.test\0" + w.password.encode()).decode()
        assert client.docmd("AUTH", "PLAIN " + token)[0] == 235
        refused = client.sendmail("alice@a.test", ["bob@b.test"], message, mail_options=["SMTPUTF8"] if utf8 else [])
        assert refused == {}


def _verify(w, data: bytes, *flags: str) -> list[str]:
    result = subprocess.run(
        ["perl", str(VERIFIER), w.dns.address, *flags], input=data, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


def _opendkim(w, data: bytes) -> list[str]:
    """OpenDKIM's verdicts as "<algorithm> <result>", from the Authentication-Results it writes in test mode."""
    result = subprocess.run(
        ["opendkim", "-x", str(w.opendkim_conf), "-vvv", "-t", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    found = re.findall(r"dkim=(\w+)[^;]*?header\.a=([\w-]+)", (result.stdout + result.stderr).decode())
    return sorted(f"{algorithm} {verdict}" for verdict, algorithm in found)


async def _until(predicate, timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


def _no_bare_line_ends(data: bytes) -> bool:
    return data.endswith(b"\r\n") and data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n")


async def test_tricky_submissions_verify_at_mail_dkim_rfc6376_rfc8463(world) -> None:
    """RFC 6376 §3.4 / RFC 5321 §2.3.8: what is signed is what the receiver gets; RSA and Ed25519 pass."""
    for n, (name, (message, utf8)) in enumerate(TRICKY.items()):
        await asyncio.to_thread(_submit, world, message, utf8)
        assert await _until(lambda n=n: len(world.sink.received) == n + 1), name
        data = world.sink.received[n].data
        assert _no_bare_line_ends(data), name
        lines = await asyncio.to_thread(_verify, world, data)
        verdicts = sorted(line.split()[1] + " " + line.split()[4] for line in lines)
        assert verdicts == ["ed25519-sha256 invalid", "rsa-sha256 pass"], (name, lines, data)
        verdicts = await asyncio.to_thread(_opendkim, world, data)
        assert verdicts == ["ed25519-sha256 pass", "rsa-sha256 pass"], (name, verdicts, data)
        lines = await asyncio.to_thread(cleandkim.verify, data, dns=world.dns.address)
        assert cleandkim.verdicts(lines) == ["ed25519-sha256 pass", "rsa-sha256 pass"], (name, lines, data)
    cr = world.sink.received[0].data
    assert b"line one\r\nstill line one\r\n" in cr  # normalised before signing, not by the sending library after it


async def test_mail_from_carries_each_parameter_once_rfc5321_4_1_2_rfc1870(world) -> None:
    """RFC 5321 §4.1.2 / RFC 1870 §6: one SIZE (the octets DATA carried), one BODY, one SMTPUTF8."""
    # One after the other: the queue may deliver two waiting messages in either order.
    await asyncio.to_thread(_submit, world, TRICKY["UTF-8 headers (SMTPUTF8)"][0], True)
    assert await _until(lambda: len(world.sink.received) == 1)
    await asyncio.to_thread(_submit, world, TRICKY["bare CR in the body"][0], False)
    assert await _until(lambda: len(world.sink.received) == 2)
    assert len(world.sink.mail_lines) == 2
    for line, received in zip(world.sink.mail_lines, world.sink.received, strict=True):
        assert line.upper().startswith("MAIL FROM:<ALICE@A.TEST>"), line
        keywords = [p.partition("=")[0].upper() for p in line.split()[2:]]
        assert len(keywords) == len(set(keywords)), line
        assert "SIZE" in keywords, line
        assert "BODY" in keywords, line
        size = re.search(r"\bSIZE=(\d+)", line, re.IGNORECASE)
        assert size is not None, line
        assert int(size.group(1)) == len(received.data), (line, len(received.data))
    assert "SMTPUTF8" in world.sink.mail_lines[0].upper().split()
    assert "SMTPUTF8" not in world.sink.mail_lines[1].upper().split()


async def test_forwarded_tricky_message_has_a_passing_arc_set_rfc8617(world) -> None:
    """The MX's forwarding path: line ends made CRLF before the ARC seal; Mail::DKIM's ARC verifier and
    dkimpy's as shipped (clean interpreter) both validate the chain (RFC 8617 §5.2: cv=pass)."""
    message = (
        b"From: News <news@sender.test>\r\nTo: fwd@a.test\r\nSubject: \x0b forwarded \x0c\r\n"
        b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <fw@sender.test>\r\n\r\n"
        b"bare\rCR and bare\nLF\r\n\r\n\r\n"
    )

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", world.mx_port, timeout=20) as client:
            client.ehlo("mail.sender.test")
            assert client.sendmail("news@sender.test", ["fwd@a.test"], message) == {}

    await asyncio.to_thread(send)
    assert await _until(lambda: len(world.sink.received) == 1)
    data = world.sink.received[0].data
    assert data.startswith(b"ARC-Seal: i=1;")
    assert _no_bare_line_ends(data)
    lines = await asyncio.to_thread(_verify, world, data, "--arc")
    assert [line.split()[1] for line in lines if line.startswith("arc ")] == ["pass"], (lines, data)
    lines = await asyncio.to_thread(cleandkim.verify, data, dns=world.dns.address, arc=True)
    assert cleandkim.verdicts(lines) == ["arc pass"], (lines, data)
