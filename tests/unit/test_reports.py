"""DMARC aggregate (RFC 7489 appendix C) and SMTP TLS (RFC 8460 §4) reports read from messages built
as reporters send them (``tests/reportkit.py``), and the inputs that must be refused with a reason:
DTDs and entities, archives that unpack past the limit whatever their headers say, documents that
are not reports."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sealmail.config.models import MAX_REPORT_ROWS, DmarcReport, TlsReport
from sealmail.reports.dmarc import parse_dmarc
from sealmail.reports.read import read_reports
from sealmail.reports.tlsrpt import parse_tlsrpt
from sealmail.reports.unpack import ReportError, TooLarge

from reportkit import DmarcSpec, Record, TlsSpec, dmarc_mail, dmarc_xml, gzipped, tls_json, tls_mail, zipped

LIMIT = 1024 * 1024


@pytest.mark.parametrize("packing", ["zip", "gzip", "gzip-nameless", "plain"])
def test_rfc7489_7_2_1_1_a_dmarc_report_in_each_packing(packing: str) -> None:
    (report,) = read_reports(dmarc_mail(DmarcSpec(), packing), LIMIT, "pass")
    assert isinstance(report, DmarcReport)
    assert (report.org_name, report.report_id, report.domain) == ("google.com", "16046812281289946171", "example.test")
    assert report.org_email == "noreply-dmarc-support@google.com"
    assert report.begin == datetime(2026, 3, 1, tzinfo=UTC)
    assert report.policy == "p=quarantine sp=quarantine pct=100 adkim=r aspf=r"
    assert report.carrier_dmarc == "pass"
    good, bad = report.rows
    assert (good.source_ip, good.count, good.disposition, good.dkim, good.spf) == (
        "192.0.2.25",
        41,
        "none",
        "pass",
        "pass",
    )
    assert (bad.source_ip, bad.count, bad.disposition, bad.dkim, bad.spf) == (
        "198.51.100.77",
        6,
        "quarantine",
        "fail",
        "fail",
    )
    assert bad.dkim_auth == ["example.test=fail"]
    assert bad.spf_auth == "spoof.test=fail"
    assert report.messages == 47


@pytest.mark.parametrize("packing", ["gzip", "json"])
def test_rfc8460_5_3_a_tls_report_as_tlsrpt_gzip_and_json(packing: str) -> None:
    (report,) = read_reports(tls_mail(TlsSpec(), packing), LIMIT)
    assert isinstance(report, TlsReport)
    assert (report.org_name, report.report_id) == ("Company-X", "5065427c-23d3-47ca-b6e0-946ea0e8c4be")
    assert report.begin == datetime(2026, 3, 1, tzinfo=UTC)
    (policy,) = report.policies
    assert (policy.domain, policy.policy_type, policy.successful, policy.failed) == ("example.test", "sts", 5326, 17)
    assert policy.mx_hosts == ["mail.example.test"]
    assert [(f.result_type, f.sessions, f.receiving_mx) for f in report.failures] == [
        ("certificate-expired", 14, "mail.example.test"),
        ("starttls-not-supported", 3, "mail.example.test"),
    ]
    assert report.failures[0].reason == "X509_V_ERR_CERT_HAS_EXPIRED"


def test_a_gzip_without_a_report_type_or_name_is_known_by_its_bytes() -> None:
    """application/octet-stream, no file name: the gzip magic and the JSON inside say what it is."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "r@reporter.test", "postmaster@example.test", "report"
    msg.set_content("see attached")
    msg.add_attachment(gzipped(tls_json(TlsSpec())), maintype="application", subtype="octet-stream")
    (report,) = read_reports(msg.as_bytes(), LIMIT)
    assert isinstance(report, TlsReport)


def test_the_dmarc_2_0_namespace_reads_the_same() -> None:
    xml = dmarc_xml(DmarcSpec()).replace(b"<feedback>", b'<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">')
    assert parse_dmarc(xml).messages == 47


def test_a_message_without_a_report_part_has_no_report() -> None:
    plain = b"From: a@b.test\r\nTo: postmaster@example.test\r\nSubject: hello\r\n\r\nYour server is great.\r\n"
    assert read_reports(plain, LIMIT) == []


# ---- refused: what each says ---------------------------------------------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]><feedback><report_metadata><org_name>&x;</org_name>
</report_metadata></feedback>"""


@pytest.mark.parametrize(
    "xml", [BILLION_LAUGHS, EXTERNAL, b'<!DOCTYPE feedback SYSTEM "http://x.test/d.dtd"><feedback/>']
)
def test_a_dtd_is_refused_so_no_entity_is_ever_expanded_or_fetched(xml: bytes) -> None:
    with pytest.raises(ReportError, match="declares a DTD or entities, which are refused"):
        parse_dmarc(xml)


def _zeros_in_xml(size: int) -> bytes:
    return b"<feedback><report_metadata><org_name>" + b"0" * size + b"</org_name></report_metadata></feedback>"


def _peak_refusing(message: bytes) -> int:
    """The most memory Python held at once while reading ``message`` was refused (tracemalloc)."""
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            read_reports(message, LIMIT)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_refused_at_the_limit() -> None:
    """64 MiB of XML in a 64 KB zip, with a 1 MiB limit: reading stops one byte past it, so what
    is held stays near the limit, never near what the archive would unpack to."""
    bomb = zipped(_zeros_in_xml(64 * 1024 * 1024), "report.xml")
    assert len(bomb) < 200_000
    message = dmarc_mail(DmarcSpec(), "zip", attach=bomb)
    with pytest.raises(TooLarge, match=r"unpacks to more than 1048576 bytes") as refused:
        read_reports(message, LIMIT)
    assert refused.value.reply.startswith("552 5.3.4 Report refused: ")
    assert _peak_refusing(message) < 8 * LIMIT


def test_a_zip_that_understates_its_size_is_still_stopped() -> None:
    """The central directory says 100 bytes; what comes out is counted, not what it says."""
    data = bytearray(zipped(_zeros_in_xml(4 * 1024 * 1024), "report.xml"))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.infolist()[0]
    real = info.file_size.to_bytes(4, "little")
    assert data.count(real) == 2  # the local header and the central directory
    forged = bytes(data).replace(real, (100).to_bytes(4, "little"))
    with pytest.raises(ReportError):
        read_reports(dmarc_mail(DmarcSpec(), "zip", attach=forged), LIMIT)


def test_a_gzip_bomb_is_refused_at_the_limit() -> None:
    message = dmarc_mail(DmarcSpec(), "gzip", attach=gzipped(_zeros_in_xml(32 * 1024 * 1024)))
    with pytest.raises(TooLarge, match="unpacks to more than"):
        read_reports(message, LIMIT)
    assert _peak_refusing(message) < 8 * LIMIT


def test_a_plain_report_over_the_limit_is_refused() -> None:
    with pytest.raises(TooLarge, match="is larger than 1024 bytes"):
        read_reports(dmarc_mail(DmarcSpec(), "plain"), 1024)


@pytest.mark.parametrize(
    ("attach", "reason"),
    [
        (b"not gzip at all", "is not a readable gzip file"),
        (gzipped(b"<feedback><oops></feedback>"), "is not well-formed XML"),
        (gzipped(b"<html><body>hi</body></html>"), "is not a DMARC aggregate report"),
        (gzipped(b"plain words"), "holds neither a DMARC report (XML) nor a TLS report (JSON)"),
        (gzipped(dmarc_xml(DmarcSpec()).replace(b"<report_id>16046812281289946171</report_id>", b"")), "no report_id"),
        (gzipped(dmarc_xml(DmarcSpec()).replace(b"192.0.2.25", b"192.0.2.999")), "is not an IP address"),
        (gzipped(dmarc_xml(DmarcSpec()).replace(b"<count>41</count>", b"<count>-41</count>")), "not a whole number"),
        (gzipped(dmarc_xml(DmarcSpec()).replace(b"<disposition>none", b"<disposition>explode")), "not one RFC 7489"),
    ],
)
def test_a_damaged_dmarc_report_says_why(attach: bytes, reason: str) -> None:
    with pytest.raises(ReportError, match=re.escape(reason)) as refused:
        read_reports(dmarc_mail(DmarcSpec(), "gzip", attach=attach), LIMIT)
    assert refused.value.reply.startswith("550 5.6.0 Report refused: ")


def test_too_many_records_are_refused() -> None:
    spec = replace(DmarcSpec(), records=[Record("192.0.2.1", 1)] * (MAX_REPORT_ROWS + 1))
    with pytest.raises(ReportError, match=f"at most {MAX_REPORT_ROWS} are taken"):
        parse_dmarc(dmarc_xml(spec))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[]", "document is not an object"),
        (tls_json(TlsSpec()).replace(b'"policies"', b'"policiez"'), "has no policies"),
        (tls_json(TlsSpec()).replace(b"5326", b"-5"), "total-successful-session-count is not a whole number"),
        (tls_json(TlsSpec()).replace(b"2026-03-01T00:00:00Z", b"yesterday"), "not an RFC 3339 time"),
        (tls_json(TlsSpec()).replace(b'"report-id"', b'"id"'), "has no report-id"),
        (tls_json(TlsSpec()).replace(b'"policy-domain": "example.test"', b'"policy-domain": "a..b"'), "not a domain"),
    ],
)
def test_a_damaged_tls_report_says_why(document: bytes, reason: str) -> None:
    with pytest.raises(ReportError, match=re.escape(reason)):
        parse_tlsrpt(document)
