"""DMARC aggregate (RFC 7489 §7.2) and SMTP TLS reports (RFC 8460 §5.3) sent through the MX to the
report address the app publishes (postmaster@<domain>: ``services.dnsrecords.report_uri``), over
real sockets with smtplib and Debian's swaks, with one MX process and with two.

The reports (``tests/reportkit.py``) are built in the reporters' formats: zip, gzip, gzip without
a file name, plain XML, ``application/tlsrpt+gzip`` and ``+json``. Read whole, they are in the config
store and no mailbox got the message; a damaged or oversized report (a zip bomb, a gzip of 1 GiB of
XML, a DTD) is refused with its reason and a log line, and the MX keeps taking mail.
"""

from __future__ import annotations

import asyncio
import smtplib
import zlib
from datetime import UTC, datetime

import pytest

from sealmail.config.models import LogQuery
from sealmail.services import aliases, credentials

from reportkit import DmarcSpec, TlsSpec, dmarc_mail, tls_mail, zipped
from smtpkit import inbox
from smtpkit import swaks as run_swaks

SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def mx_overrides() -> dict:
    return {"max_message_size": 4_000_000}  # room for the 1 GiB gzip (about 1 MB packed)


def _send(port: int, message: bytes, rcpts: tuple[str, ...] = ("postmaster@example.test",)) -> list[tuple[int, bytes]]:
    """MAIL, each RCPT and DATA; the replies (DATA's only when a recipient was taken)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("reporter.example.org")
        client.mail("noreply-dmarc-support@reporter.example.org")
        replies = [client.rcpt(r) for r in rcpts]
        if any(code == 250 for code, _ in replies):
            replies.append(client.data(message))
        return replies


async def _sent(port: int, message: bytes, *rcpts: str) -> list[tuple[int, bytes]]:
    return await asyncio.to_thread(_send, port, message, rcpts or ("postmaster@example.test",))


@pytest.mark.parametrize("packing", ["zip", "gzip", "gzip-nameless", "plain"])
async def test_rfc7489_7_2_a_dmarc_report_is_read_and_kept_once(mx, config, packing) -> None:
    message = dmarc_mail(DmarcSpec(), packing)
    *_, data = await _sent(mx.port, message)
    assert data == (250, b"2.0.0 Ok: 1 report(s) read, 1 new")
    (report,) = config.list_dmarc_reports(SINCE, UNTIL, "example.test")
    assert (report.org_name, report.report_id, report.messages) == ("google.com", "16046812281289946171", 47)
    assert [r.source_ip for r in report.rows] == ["192.0.2.25", "198.51.100.77"]
    assert report.carrier_dmarc == "none"  # the test reporter publishes no DMARC record
    *_, again = await _sent(mx.port, message)  # reporters send again; so do retries
    assert again == (250, b"2.0.0 Ok: 1 report(s) read, 0 new")
    assert len(config.list_dmarc_reports(SINCE, UNTIL)) == 1
    logged = config.query_logs(LogQuery(kind="delivery", status="report")).entries
    assert logged[0].detail == (
        "DMARC report 16046812281289946171 from google.com: 47 message(s), 6 failing DMARC (kept already)"
    )


@pytest.mark.tool("swaks")
@pytest.mark.parametrize("packing", ["gzip", "json"])
async def test_rfc8460_5_3_a_tls_report_through_swaks(mx, config, tmp_path, packing) -> None:
    path = tmp_path / "tlsrpt.eml"
    path.write_bytes(tls_mail(TlsSpec(), packing))
    sent = await asyncio.to_thread(
        run_swaks,
        mx.port,
        *("--helo", "mail.company-x.example", "--from", "tls-reports@company-x.example"),
        *("--to", "postmaster@example.test", "--data", f"@{path}"),
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "250 2.0.0 Ok: 1 report(s) read, 1 new" in sent.stdout
    (report,) = config.list_tls_reports(SINCE, UNTIL, "example.test")
    assert report.org_name == "Company-X"
    assert [(f.result_type, f.sessions) for f in report.failures] == [
        ("certificate-expired", 14),
        ("starttls-not-supported", 3),
    ]


async def test_a_report_does_not_reach_the_postmaster_mailbox_but_other_mail_does(mx, config) -> None:
    """With a postmaster alias: reports go to the config store, a person's mail to the mailbox."""
    aliases.add_alias(config, "postmaster@example.test")
    password = credentials.set_password(config, mx.settings, "postmaster@example.test")
    *_, report = await _sent(mx.port, dmarc_mail(DmarcSpec(), "zip"))
    assert report[0] == 250
    letter = b"From: a@reporter.example.org\r\nTo: postmaster@example.test\r\nSubject: your server\r\n\r\nHello.\r\n"
    *_, data = await _sent(mx.port, letter)
    assert data[0] == 250, data
    mails = await asyncio.to_thread(inbox, mx.settings, config, "postmaster@example.test", password)
    assert len(mails) == 1
    assert b"Subject: your server" in mails[0]


async def test_other_mail_to_a_report_address_without_an_alias_is_refused(mx, config) -> None:
    letter = b"From: a@reporter.example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
    rcpt, data = await _sent(mx.port, letter)
    assert rcpt[0] == 250  # taken at RCPT: reports need no alias
    assert data == (550, b"5.1.1 No such user here: this address takes DMARC and TLS reports only")


async def test_rfc5321_4_5_3_1_10_report_addresses_get_a_transaction_of_their_own(mx) -> None:
    first, second = await asyncio.to_thread(
        lambda: _send(mx.port, b"", ("postmaster@example.test", "demo@example.test"))[:2]
    )
    assert first == (250, b"2.1.5 Recipient ok")
    assert second == (452, b"4.5.3 Send the report address and other recipients in separate transactions")
    first, second = await asyncio.to_thread(
        lambda: _send(mx.port, b"", ("demo@example.test", "POSTMASTER@example.test"))[:2]
    )
    assert first[0] == 250
    assert second[0] == 452


# ---- refused without harm -------------------------------------------------------------------------
def _gzip_of_zeros_in_xml(size: int) -> bytes:
    """A gzip of ``size`` bytes of XML, made a megabyte at a time (never all in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(b"<feedback><report_metadata><org_name>")]
    chunk = b"0" * (1024 * 1024)
    out += [packer.compress(chunk) for _ in range(size // len(chunk))]
    out.append(packer.compress(b"</org_name></report_metadata></feedback>"))
    out.append(packer.flush())
    return b"".join(out)


async def _still_serving(mx) -> None:
    """Nothing else was affected: the next message is taken as ever."""
    *_, data = await _sent(mx.port, b"Subject: after\r\n\r\nstill here\r\n", "demo@example.test")
    assert data[0] == 250, data


async def test_a_gzip_of_1_gib_of_xml_is_refused_with_a_log_line(mx, config) -> None:
    packed = await asyncio.to_thread(_gzip_of_zeros_in_xml, 1024**3)
    assert len(packed) < 2_000_000
    *_, data = await _sent(mx.port, dmarc_mail(DmarcSpec(), "gzip", attach=packed))
    limit = mx.settings.report_max_bytes
    assert data[0] == 552
    assert data[1].decode() == (
        f"5.3.4 Report refused: google.com!example.test!1772323200!1772409599.xml.gz unpacks to more than {limit} bytes"
    )
    assert config.list_dmarc_reports(SINCE, UNTIL) == []
    (entry,) = config.query_logs(LogQuery(kind="delivery", status="rejected")).entries
    assert entry.detail.startswith("report refused: google.com!example.test!")
    await _still_serving(mx)


async def test_a_zip_bomb_is_refused(mx, config) -> None:
    bomb = zipped(b"<feedback>" + b"0" * (64 * 1024 * 1024) + b"</feedback>", "report.xml")
    *_, data = await _sent(mx.port, dmarc_mail(DmarcSpec(), "zip", attach=bomb))
    assert data[0] == 552
    assert b"unpacks to more than" in data[1]
    assert config.list_dmarc_reports(SINCE, UNTIL) == []
    await _still_serving(mx)


async def test_entities_are_refused(mx, config) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">]><feedback>&a;</feedback>'
    *_, data = await _sent(mx.port, dmarc_mail(DmarcSpec(), "plain", attach=laughs))
    assert data[0] == 550
    assert data[1].startswith(b"5.6.0 Report refused: the DMARC report's XML declares a DTD or entities")
    await _still_serving(mx)


async def test_a_report_about_a_domain_not_hosted_here_is_refused(mx, config) -> None:
    *_, data = await _sent(mx.port, dmarc_mail(DmarcSpec(domain="elsewhere.test"), "zip"))
    assert data == (550, b"5.7.1 Report refused: it is about elsewhere.test, which this server does not host")
    assert config.list_dmarc_reports(SINCE, UNTIL) == []


async def test_reports_past_their_retention_are_removed_by_the_jobs_component(settings, config) -> None:
    from datetime import timedelta

    from sealmail.config.models import DmarcReport
    from sealmail.jobs.component import JobsComponent

    from support import async_wait_for

    old = datetime.now(UTC) - timedelta(days=31)
    recent = datetime.now(UTC) - timedelta(days=2)
    for name, begin in (("old", old), ("recent", recent)):
        config.add_dmarc_report(DmarcReport("r.test", name, "example.test", begin, begin + timedelta(days=1)))
    jobs = JobsComponent(settings.model_copy(update={"report_retention_days": 30}))
    await jobs.start()
    try:
        since = datetime.now(UTC) - timedelta(days=60)

        def left() -> list[str]:
            return [r.report_id for r in config.list_dmarc_reports(since, datetime.now(UTC))]

        await async_wait_for(lambda: left() == ["recent"], what="the old report went")
    finally:
        await jobs.stop()
