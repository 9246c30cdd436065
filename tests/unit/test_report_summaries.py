"""Who reported what: the DMARC and TLS reports of a window summed per domain and per reporter
(``services.reports.dmarc_reporters``, ``tls_reporters``), from reports built in the reporters' own
formats (``tests/reportkit.py``: RFC 7489 appendix C XML, RFC 8460 §4.3 JSON) and read by the
parsers the MX uses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from sealmail.reports.dmarc import parse_dmarc
from sealmail.reports.tlsrpt import parse_tlsrpt
from sealmail.services.reports import dmarc_reporters, tls_reporters

from reportkit import DmarcSpec, Record, TlsSpec, dmarc_xml, tls_json

DAY = 86400
MARCH_1 = 1772323200  # 2026-03-01T00:00:00Z


def _dmarc(org: str, report_id: str, day: int, records: list[Record], domain: str = "example.test"):
    begin = MARCH_1 + day * DAY
    spec = DmarcSpec(org=org, report_id=report_id, domain=domain, begin=begin, end=begin + DAY - 1, records=records)
    return parse_dmarc(dmarc_xml(spec))


def _forged(count: int, domain: str = "example.test") -> Record:
    return Record(
        "198.51.100.77",
        count,
        "reject",
        "fail",
        "fail",
        header_from=domain,
        dkim_result="fail",
        spf_domain="spoof.test",
        spf_result="fail",
    )


def _newsletter(count: int) -> Record:
    """A newsletter service: its SPF passes for its own bounce domain only (not aligned: SPF fails
    for DMARC), but it signs with the domain's key (DKIM aligned: DMARC passes)."""
    return Record("203.0.113.80", count, "none", "pass", "fail", spf_domain="bounces.newsletter.test")


def _good(count: int, domain: str = "example.test") -> Record:
    return Record("192.0.2.25", count, header_from=domain, dkim_domain=domain, spf_domain=domain)


def test_rfc7489_7_2_dmarc_reports_summed_per_domain_and_reporter() -> None:
    """Each receiver's reports about a domain make one row: how many reports, the period they
    cover, the messages counted and how many passed SPF and DKIM aligned (policy_evaluated,
    RFC 7489 appendix C) and DMARC (either of them, §4.2). The rows with the largest failing share
    come first."""
    reports = [
        _dmarc("google.com", "g-1", 0, [_good(120), _forged(9)]),
        _dmarc("google.com", "g-2", 2, [_good(10), _newsletter(2)]),
        _dmarc("yahoo.com", "y-1", 1, [_good(30), _newsletter(12), _forged(4)]),
        _dmarc("google.com", "g-o", 1, [_good(5, "other.test")], domain="other.test"),
    ]
    found = dmarc_reporters(reports)
    assert list(found) == ["example.test", "other.test"]
    yahoo, google = found["example.test"]
    assert (yahoo.org_name, google.org_name) == ("yahoo.com", "google.com")  # 4 of 46 fail, before 9 of 141
    assert google.emails == {"noreply-dmarc-support@google.com"}
    assert (google.reports, google.messages, google.spf_pass, google.dkim_pass, google.dmarc_pass) == (
        2,
        141,
        130,
        132,  # the newsletter signs with the domain's key: DKIM aligned, DMARC passes
        132,
    )
    assert google.begin == datetime(2026, 3, 1, tzinfo=UTC)
    assert google.end == datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC)
    assert google.failing == 9
    assert round(google.failing_share, 2) == 6.38
    assert (yahoo.reports, yahoo.messages, yahoo.spf_pass, yahoo.dkim_pass, yahoo.dmarc_pass) == (1, 46, 30, 42, 42)
    assert (yahoo.failing, round(yahoo.failing_share, 2)) == (4, 8.7)
    (other,) = found["other.test"]
    assert (other.org_name, other.reports, other.messages, other.dmarc_pass, other.failing_share) == (
        "google.com",
        1,
        5,
        5,
        0.0,
    )


def test_a_reporter_whose_mail_all_passed_comes_after_any_that_failed() -> None:
    found = dmarc_reporters(
        [
            _dmarc("big.example", "b-1", 0, [_good(1000)]),
            _dmarc("small.example", "s-1", 0, [_good(1), _forged(1)]),
            _dmarc("empty.example", "e-1", 0, []),  # a report with no record: nothing to divide
        ]
    )["example.test"]
    assert [(r.org_name, r.failing_share) for r in found] == [
        ("small.example", 50.0),
        ("big.example", 0.0),
        ("empty.example", 0.0),
    ]


def _tls(org: str, report_id: str, successful: int, failures: list[tuple[str, int]], *domains: str):
    """A TLS report with one policy per domain (RFC 8460 §4.4: a report may carry several)."""
    base = TlsSpec(org=org, report_id=report_id, successful=successful, failures=failures)
    document = json.loads(tls_json(replace(base, domain=domains[0])))
    for domain in domains[1:]:
        document["policies"] += json.loads(tls_json(replace(base, domain=domain)))["policies"]
    return parse_tlsrpt(json.dumps(document).encode())


def test_rfc8460_4_tls_reports_summed_per_domain_and_reporting_organisation() -> None:
    """Each policy of a report counts for its policy-domain: sessions fine and failed (the
    summary's total-successful-session-count and total-failure-session-count, RFC 8460 §4.4)."""
    reports = [
        _tls("Company-X", "x-1", 5326, [("certificate-expired", 14), ("starttls-not-supported", 3)], "example.test"),
        _tls("Company-X", "x-2", 100, [], "example.test"),
        _tls("Mail-Y", "y-1", 20, [("sts-policy-fetch-error", 5)], "example.test", "other.test"),
    ]
    found = tls_reporters(reports)
    assert list(found) == ["example.test", "other.test"]
    mail_y, company_x = found["example.test"]
    assert (mail_y.org_name, mail_y.reports, mail_y.successful, mail_y.failed) == ("Mail-Y", 1, 20, 5)
    assert round(mail_y.failing_share, 1) == 20.0
    assert (company_x.org_name, company_x.reports, company_x.successful, company_x.failed) == (
        "Company-X",
        2,
        5426,
        17,
    )
    assert company_x.contacts == {"sts-reporting@company-x.example"}
    assert (company_x.begin, company_x.end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
    )
    (other,) = found["other.test"]
    assert (other.org_name, other.reports, other.successful, other.failed) == ("Mail-Y", 1, 20, 5)
    only = tls_reporters(reports, "other.test")
    assert list(only) == ["other.test"]
    assert [r.org_name for r in only["other.test"]] == ["Mail-Y"]
