"""An SMTP TLS report (RFC 8460 §4) from its JSON.

The document is within the byte limit already (``unpack``); nesting deeper than the parser's
recursion limit is refused as malformed. Only the fields RFC 8460 §4.3 names are read; strings are
cut to ``MAX_REPORT_TEXT``; counts must be whole numbers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sealmail.addresses import normalize_domain
from sealmail.config.models import MAX_REPORT_ROWS, MAX_REPORT_TEXT, TlsFailure, TlsPolicy, TlsReport
from sealmail.errors import InvalidInput
from sealmail.reports.unpack import ReportError


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"the TLS report's {what} is not an object")
    return value


def _string(obj: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = obj.get(key, "")
    if isinstance(value, list):  # RFC 8460 gives some fields as lists of strings
        value = ", ".join(str(v) for v in value if isinstance(v, str))
    if not isinstance(value, str) or (required and not value.strip()):
        raise ReportError(f"the TLS report has no {key}")
    return value.strip()[:MAX_REPORT_TEXT]


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(f"the TLS report's {key} is not a whole number")
    return value


def _time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)  # RFC 3339 (RFC 8460 §4.3); "Z" is read from Python 3.11 on
    except ValueError:
        raise ReportError(f"the TLS report's {what} is not an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [v.strip()[:MAX_REPORT_TEXT] for v in value if isinstance(v, str)][:20]


def parse_tlsrpt(data: bytes, carrier_dmarc: str = "none") -> TlsReport:
    """The report in ``data``; ``ReportError`` saying what is wrong with it."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"the TLS report is not valid JSON ({str(exc)[:120]})") from None
    report = _object(document, "document")
    span = _object(report.get("date-range"), "date-range")
    policies: list[TlsPolicy] = []
    failures: list[TlsFailure] = []
    entries = report.get("policies")
    if not isinstance(entries, list) or not entries:
        raise ReportError("the TLS report has no policies")
    for item in entries:
        entry = _object(item, "policy entry")
        policy = _object(entry.get("policy"), "policy")
        summary = _object(entry.get("summary", {}), "summary")
        try:
            domain = normalize_domain(_string(policy, "policy-domain", required=True)).ascii
        except InvalidInput as exc:
            raise ReportError(f"the TLS report's policy-domain is not a domain: {exc}") from None
        policies.append(
            TlsPolicy(
                domain=domain,
                policy_type=_string(policy, "policy-type") or "no-policy-found",
                successful=_count(summary, "total-successful-session-count"),
                failed=_count(summary, "total-failure-session-count"),
                mx_hosts=_strings(policy.get("mx-host", policy.get("mx-host-pattern", []))),
            )
        )
        details = entry.get("failure-details", [])
        if not isinstance(details, list):
            raise ReportError("the TLS report's failure-details is not a list")
        for line in details:
            detail = _object(line, "failure detail")
            failures.append(
                TlsFailure(
                    domain=domain,
                    result_type=_string(detail, "result-type", required=True),
                    sessions=_count(detail, "failed-session-count"),
                    receiving_mx=_string(detail, "receiving-mx-hostname").rstrip(".").lower(),
                    receiving_ip=_string(detail, "receiving-ip"),
                    sending_ip=_string(detail, "sending-mta-ip"),
                    reason=_string(detail, "failure-reason-code") or _string(detail, "additional-information"),
                )
            )
        if len(policies) + len(failures) > MAX_REPORT_ROWS:
            raise ReportError(f"the TLS report has more than {MAX_REPORT_ROWS} policies and failure lines")
    begin = _time(_string(span, "start-datetime", required=True), "start-datetime")
    end = _time(_string(span, "end-datetime", required=True), "end-datetime")
    if end < begin:
        raise ReportError("the TLS report's date range ends before it begins")
    return TlsReport(
        org_name=_string(report, "organization-name", required=True),
        report_id=_string(report, "report-id", required=True),
        begin=begin.astimezone(UTC),
        end=end.astimezone(UTC),
        contact=_string(report, "contact-info"),
        policies=policies,
        failures=failures,
        carrier_dmarc=carrier_dmarc,
    )
