"""Every report a message carries, parsed: what the MX's report intake calls."""

from __future__ import annotations

from sealmail.config.models import DmarcReport, TlsReport
from sealmail.reports.dmarc import parse_dmarc
from sealmail.reports.tlsrpt import parse_tlsrpt
from sealmail.reports.unpack import report_parts

Report = DmarcReport | TlsReport


def read_reports(message: bytes, limit: int, carrier_dmarc: str = "none") -> list[Report]:
    """The reports in ``message`` (empty: it carries no report part). ``ReportError`` when a part
    that is one cannot be read whole: then none of them is taken."""
    found: list[Report] = []
    for part in report_parts(message, limit):
        if part.kind == "dmarc":
            found.append(parse_dmarc(part.data, carrier_dmarc))
        else:
            found.append(parse_tlsrpt(part.data, carrier_dmarc))
    return found
