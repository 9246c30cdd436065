"""A DMARC aggregate report (RFC 7489 appendix C) from its XML.

The XML is parsed by defusedxml with ``forbid_dtd``: a document type declaration of any kind is
refused, so no entity is declared, expanded or fetched (the "billion laughs" and external entities
need one). The document is already within the byte limit (``unpack``). Element names are matched
without their namespace, so the draft's ``urn:ietf:params:xml:ns:dmarc-2.0`` reports read the same.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sealmail.addresses import normalize_domain
from sealmail.config.models import MAX_REPORT_ROWS, MAX_REPORT_TEXT, DmarcReport, DmarcRow
from sealmail.errors import InvalidInput
from sealmail.reports.unpack import ReportError

_DISPOSITIONS = {"none", "quarantine", "reject", "pass"}  # "pass": the DMARCbis draft's name for none


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _children(element: Element, name: str) -> list[Element]:
    return [c for c in element if _local(c.tag) == name]


def _text(element: Element | None, name: str, *, required: str | None = None) -> str:
    found = _child(element, name) if element is not None else None
    value = (found.text or "").strip() if found is not None else ""
    if not value and required:
        raise ReportError(f"the DMARC report has no {required}")
    return value[:MAX_REPORT_TEXT]


def _count(text: str, what: str) -> int:
    if not text.isdigit():
        raise ReportError(f"the DMARC report's {what} is not a whole number: {text[:40]!r}")
    return int(text)


def _time(text: str, what: str) -> datetime:
    seconds = _count(text, what)  # RFC 7489 appendix C: seconds since the epoch, UTC
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ReportError(f"the DMARC report's {what} is out of range") from None


def _domain(text: str, what: str) -> str:
    try:
        return normalize_domain(text).ascii
    except InvalidInput as exc:
        raise ReportError(f"the DMARC report's {what} is not a domain: {exc}") from None


def _result(element: Element) -> str:
    domain = _text(element, "domain")
    result = _text(element, "result") or "none"
    return f"{domain}={result}" if domain else result


def _row(record: Element) -> DmarcRow:
    row = _child(record, "row")
    if row is None:
        raise ReportError("a record of the DMARC report has no row")
    source = _text(row, "source_ip", required="source_ip in a record")
    try:
        source = str(ipaddress.ip_address(source))
    except ValueError:
        raise ReportError(f"the DMARC report's source_ip {source[:60]!r} is not an IP address") from None
    evaluated = _child(row, "policy_evaluated")
    disposition = _text(evaluated, "disposition").lower() or "none"
    if disposition not in _DISPOSITIONS:
        raise ReportError(f"the DMARC report's disposition {disposition[:40]!r} is not one RFC 7489 knows")
    identifiers = _child(record, "identifiers")
    auth = _child(record, "auth_results")
    return DmarcRow(
        source_ip=source,
        count=_count(_text(row, "count", required="count in a record"), "count"),
        disposition="none" if disposition == "pass" else disposition,
        dkim=_text(evaluated, "dkim").lower() or "fail",
        spf=_text(evaluated, "spf").lower() or "fail",
        header_from=_text(identifiers, "header_from").lower(),
        envelope_from=_text(identifiers, "envelope_from").lower(),
        dkim_auth=[_result(d) for d in _children(auth, "dkim")] if auth is not None else [],
        spf_auth=next((_result(s) for s in _children(auth, "spf")), "") if auth is not None else "",
    )


def parse_dmarc(data: bytes, carrier_dmarc: str = "none") -> DmarcReport:
    """The report in ``data``; ``ReportError`` saying what is wrong with it."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ReportError(f"the DMARC report's XML declares a DTD or entities, which are refused ({exc})") from None
    except ParseError as exc:
        raise ReportError(f"the DMARC report is not well-formed XML ({exc})") from None
    if _local(root.tag) != "feedback":
        raise ReportError(f"the XML is not a DMARC aggregate report (its root is {_local(root.tag)[:40]!r})")
    metadata = _child(root, "report_metadata")
    published = _child(root, "policy_published")
    if metadata is None or published is None:
        raise ReportError("the DMARC report lacks report_metadata or policy_published")
    span = _child(metadata, "date_range")
    records = _children(root, "record")
    if len(records) > MAX_REPORT_ROWS:
        raise ReportError(f"the DMARC report has {len(records)} records; at most {MAX_REPORT_ROWS} are taken")
    policy = " ".join(
        f"{name}={value}" for name in ("p", "sp", "pct", "adkim", "aspf", "fo") if (value := _text(published, name))
    )
    begin = _time(_text(span, "begin", required="date_range/begin"), "date_range/begin")
    end = _time(_text(span, "end", required="date_range/end"), "date_range/end")
    if end < begin:
        raise ReportError("the DMARC report's date range ends before it begins")
    return DmarcReport(
        org_name=_text(metadata, "org_name", required="org_name"),
        report_id=_text(metadata, "report_id", required="report_id"),
        domain=_domain(_text(published, "domain", required="policy_published/domain"), "domain"),
        begin=begin,
        end=end,
        org_email=_text(metadata, "email"),
        policy=policy[:MAX_REPORT_TEXT],
        rows=[_row(r) for r in records],
        carrier_dmarc=carrier_dmarc,
    )
