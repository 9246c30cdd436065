"""DMARC aggregate and SMTP TLS reports as reporters send them, built by the tests.

``dmarc_xml`` writes RFC 7489 appendix C XML; ``tls_json`` writes RFC 8460 §4.3 JSON (its §4.4
example's shape); ``dmarc_mail`` and ``tls_mail`` wrap them in the messages big reporters send:

- DMARC, ``zip``: ``application/zip`` named ``<receiver>!<domain>!<begin>!<end>.zip`` (RFC 7489
  §7.2.1.1's file name, Google's packing);
- DMARC, ``gzip``: ``application/gzip`` named ``….xml.gz`` (Yahoo's, Outlook's);
- DMARC, ``plain``: ``text/xml`` named ``….xml``;
- DMARC, ``gzip-nameless``: ``application/gzip`` with no file name (RFC 7489 only requires the type);
- TLS, ``gzip``: ``multipart/report; report-type=tlsrpt`` with an ``application/tlsrpt+gzip`` part
  named ``….json.gz`` and the RFC 8460 §5.3 header fields; ``json``: ``application/tlsrpt+json``.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


@dataclass
class Record:
    source_ip: str
    count: int
    disposition: str = "none"
    dkim: str = "pass"
    spf: str = "pass"
    header_from: str = "example.test"
    dkim_domain: str = "example.test"
    dkim_result: str = "pass"
    spf_domain: str = "example.test"
    spf_result: str = "pass"


@dataclass
class DmarcSpec:
    org: str = "google.com"
    report_id: str = "16046812281289946171"
    domain: str = "example.test"
    begin: int = 1772323200  # 2026-03-01T00:00:00Z
    end: int = 1772409599
    records: list[Record] = field(
        default_factory=lambda: [
            Record("192.0.2.25", 41),
            Record(
                "198.51.100.77",
                6,
                "quarantine",
                "fail",
                "fail",
                dkim_result="fail",
                spf_domain="spoof.test",
                spf_result="fail",
            ),
        ]
    )


def dmarc_xml(spec: DmarcSpec) -> bytes:
    rows = "".join(
        f"""
  <record>
    <row>
      <source_ip>{r.source_ip}</source_ip>
      <count>{r.count}</count>
      <policy_evaluated><disposition>{r.disposition}</disposition><dkim>{r.dkim}</dkim><spf>{r.spf}</spf></policy_evaluated>
    </row>
    <identifiers><header_from>{r.header_from}</header_from></identifiers>
    <auth_results>
      <dkim><domain>{r.dkim_domain}</domain><selector>rsa1</selector><result>{r.dkim_result}</result></dkim>
      <spf><domain>{r.spf_domain}</domain><result>{r.spf_result}</result></spf>
    </auth_results>
  </record>"""
        for r in spec.records
    )
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{spec.org}</org_name>
    <email>noreply-dmarc-support@{spec.org}</email>
    <report_id>{spec.report_id}</report_id>
    <date_range><begin>{spec.begin}</begin><end>{spec.end}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>{spec.domain}</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct>
  </policy_published>{rows}
</feedback>
""".encode()


@dataclass
class TlsSpec:
    org: str = "Company-X"
    report_id: str = "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    domain: str = "example.test"
    start: str = "2026-03-01T00:00:00Z"
    end: str = "2026-03-01T23:59:59Z"
    successful: int = 5326
    failures: list[tuple[str, int]] = field(
        default_factory=lambda: [("certificate-expired", 14), ("starttls-not-supported", 3)]
    )


def tls_json(spec: TlsSpec) -> bytes:
    document = {
        "organization-name": spec.org,
        "date-range": {"start-datetime": spec.start, "end-datetime": spec.end},
        "contact-info": "sts-reporting@company-x.example",
        "report-id": spec.report_id,
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", f"mx: mail.{spec.domain}", "max_age: 604800"],
                    "policy-domain": spec.domain,
                    "mx-host": [f"mail.{spec.domain}"],
                },
                "summary": {
                    "total-successful-session-count": spec.successful,
                    "total-failure-session-count": sum(n for _, n in spec.failures),
                },
                "failure-details": [
                    {
                        "result-type": result,
                        "sending-mta-ip": "2001:db8:abcd:0012::1",
                        "receiving-mx-hostname": f"mail.{spec.domain}",
                        "receiving-ip": "203.0.113.56",
                        "failed-session-count": count,
                        "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED" if "certificate" in result else "",
                    }
                    for result, count in spec.failures
                ],
            }
        ],
    }
    return json.dumps(document, indent=1).encode()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(data: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def _envelope(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    return msg


def dmarc_mail(
    spec: DmarcSpec, packing: str = "zip", to: str = "postmaster@example.test", attach: bytes | None = None
) -> bytes:
    """A DMARC aggregate report message (see the module docstring for the packings); ``attach``
    replaces the packed report (a damaged or oversized one)."""
    stem = f"{spec.org}!{spec.domain}!{spec.begin}!{spec.end}"
    msg = _envelope(
        f"noreply-dmarc-support@{spec.org}",
        to,
        f"Report domain: {spec.domain} Submitter: {spec.org} Report-ID: {spec.report_id}",
    )
    msg.set_content(f"This is an aggregate report from {spec.org}.")
    xml = dmarc_xml(spec)
    if packing == "zip":
        body, maintype, subtype, name = zipped(xml, f"{stem}.xml"), "application", "zip", f"{stem}.zip"
    elif packing == "gzip":
        body, maintype, subtype, name = gzipped(xml), "application", "gzip", f"{stem}.xml.gz"
    elif packing == "gzip-nameless":
        body, maintype, subtype, name = gzipped(xml), "application", "gzip", None
    elif packing == "plain":
        body, maintype, subtype, name = xml, "text", "xml", f"{stem}.xml"
    else:
        raise ValueError(packing)
    if attach is not None:
        body = attach
    if maintype == "text":
        msg.add_attachment(body.decode(), subtype=subtype, filename=name)
    else:
        msg.add_attachment(body, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def tls_mail(
    spec: TlsSpec, packing: str = "gzip", to: str = "postmaster@example.test", attach: bytes | None = None
) -> bytes:
    """An SMTP TLS report message as RFC 8460 §5.3 describes it."""
    name = f"{spec.org}!{spec.domain}!{spec.start}!{spec.end}!{spec.report_id}.json"
    msg = _envelope(
        f"tls-reports@{spec.org.lower()}.example",
        to,
        f"Report Domain: {spec.domain} Submitter: {spec.org} Report-ID: <{spec.report_id}>",
    )
    msg["TLS-Report-Domain"] = spec.domain
    msg["TLS-Report-Submitter"] = spec.org
    msg.set_content(f"This is an aggregate TLS report from {spec.org}.")
    document = tls_json(spec)
    if packing == "gzip":
        body, subtype, name = gzipped(document), "tlsrpt+gzip", name + ".gz"
    elif packing == "json":
        body, subtype = document, "tlsrpt+json"
    else:
        raise ValueError(packing)
    if attach is not None:
        body = attach
    msg.add_attachment(body, maintype="application", subtype=subtype, filename=name)
    msg.replace_header("Content-Type", msg.get("Content-Type") + "; report-type=tlsrpt")
    msg.set_type("multipart/report")
    return msg.as_bytes().replace(b"\n", b"\r\n")
