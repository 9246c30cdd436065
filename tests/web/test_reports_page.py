"""DMARC and TLS reports, end to end: built in the reporters' formats (``tests/reportkit.py``), sent
through the real MX to postmaster@example.test with smtplib, read by it into the config store, and
shown by the web admin's Reports page (over HTTPS; in headless chromium, with screenshots in
``$SEALMAIL_TEST_OUTPUT/reports``, default ``test-output/``) and by ``/v1/reports`` (RFC 7489 §7.2,
RFC 8460 §4). A real DNS server (dnsmasq) gives one source address a PTR name.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from browserkit import launch, shots_dir

from sealmail.services import domains, tokens

from dnsserver import DnsServer
from reportkit import DmarcSpec, Record, TlsSpec, dmarc_mail, tls_mail
from support import ComponentThread
from webkit import ADMIN

pytestmark = pytest.mark.tool("dnsmasq")

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _day(ago: int) -> tuple[int, int]:
    begin = TODAY - timedelta(days=ago)
    return int(begin.timestamp()), int((begin + timedelta(days=1)).timestamp()) - 1


def _dmarc(org: str, report_id: str, ago: int, records: list[Record]) -> DmarcSpec:
    begin, end = _day(ago)
    return DmarcSpec(org=org, report_id=report_id, begin=begin, end=end, records=records)


# Two receivers' reports on two days: the host itself (192.0.2.25) passes everywhere; a forger at
# 198.51.100.77 fails; a forgotten newsletter service at 203.0.113.80 passes SPF for its own bounce
# domain only (not aligned), so it fails DMARC too.
REPORTS = [
    dmarc_mail(
        _dmarc(
            "google.com",
            "g-1",
            3,
            [Record("192.0.2.25", 120), Record("198.51.100.77", 9, "quarantine", "fail", "fail")],
        ),
        "zip",
    ),
    dmarc_mail(
        _dmarc(
            "yahoo.com",
            "y-1",
            2,
            [
                Record("192.0.2.25", 30),
                Record(
                    "203.0.113.80",
                    12,
                    "none",
                    "fail",
                    "fail",
                    dkim_result="none",
                    spf_domain="bounces.newsletter.test",
                    spf_result="pass",
                ),
                Record("198.51.100.77", 4, "reject", "fail", "fail"),
            ],
        ),
        "gzip",
    ),
    tls_mail(
        replace(
            TlsSpec(),
            start=(TODAY - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            end=(TODAY - timedelta(days=1, seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        "gzip",
    ),
]


@pytest.fixture
def dns(tmp_path: Path):
    (tmp_path / "dns").mkdir()
    server = DnsServer(tmp_path / "dns")
    server.ptr("192.0.2.25", "mail-out.example.test")
    server.txt("_nothing.example.test", "v=none")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_settings(web_settings, dns):
    return web_settings.model_copy(update={"dns_servers": [dns.address], "mx_port": 0, "mx_auth_workers": 1})


def _send(web_settings, messages: list[bytes], to: str = "postmaster@example.test") -> None:
    """Each report message through the real MX, as a reporter's server sends it."""
    mx = ComponentThread("mx", web_settings)
    try:
        for message in messages:
            with smtplib.SMTP("127.0.0.1", mx.ports["mx"], timeout=30) as client:
                client.ehlo("reporter.example.org")
                client.mail("reports@reporter.example.org")
                assert client.rcpt(to)[0] == 250
                code, reply = client.data(message)
                assert (code, reply) == (250, b"2.0.0 Ok: 1 report(s) read, 1 new")
    finally:
        mx.stop()


@pytest.fixture
def reported(web_settings, store):
    """example.test hosted, and every report of ``REPORTS`` sent through the MX."""
    domains.add_domain(store, "example.test", web_settings)
    _send(web_settings, REPORTS)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_page_shows_who_sent_as_the_domain_and_what_failed(reported, signed_in) -> None:
    page = signed_in.get("/admin/reports").text
    assert 'href="/admin/reports" aria-current="page"' in page
    words = _text(page)
    assert "175 messages reported by 2 receivers in 2 reports" in words
    assert "passed DMARC 86% (150)" in words
    assert "SPF 86% (150)" in words  # the newsletter's SPF pass is for its own domain: not aligned
    assert "DKIM 86% (150)" in words
    sources = re.findall(r'<tr class="(failing|passing)" data-source="([^"]+)">', page)
    assert sources == [("failing", "198.51.100.77"), ("failing", "203.0.113.80"), ("passing", "192.0.2.25")]
    row = page[page.index('data-source="192.0.2.25"') :].split("</tr>")[0]
    assert "mail-out.example.test" in row  # its PTR, looked up for the page
    forger = _text(page[page.index('data-source="198.51.100.77"') :].split("</tr>")[0])
    assert "fails DMARC" in forger
    assert "quarantine 9, reject 4" in forger
    assert "google.com, yahoo.com" in forger
    assert re.search(
        r'<title id="dmarc-chart-title">Messages reported by DMARC per day over the last 30 days: '
        r"passed 150, failed 25</title>",
        page,
    )
    table = page[page.index('id="dmarc-days"') :].split("</table>")[0]
    days = dict(re.findall(r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th><td>(\d+)</td><td>\d+</td></tr>', table))
    assert days[(TODAY - timedelta(days=3)).date().isoformat()] == "120"
    # TLS: the failures by receiving domain and result
    assert "5326 sessions fine, 17 failed, reported by 1 sender" in _text(page)
    failures = re.findall(
        r'<tr data-failure="([^"]+)"><th scope="row">[^<]+</th><td><code>[^<]+</code></td><td>(\d+)</td>', page
    )
    assert failures == [("example.test certificate-expired", "14"), ("example.test starttls-not-supported", "3")]
    assert "X509_V_ERR_CERT_HAS_EXPIRED" in page


def _reporters(page: str, table: str) -> list[tuple[str, str, list[str]]]:
    """The rows of a who-reported table: each row's class, its reporter and its cells' words."""
    body = page[page.index(f'id="{table}"') :].partition("</table>")[0]
    rows = re.findall(r'<tr class="(failing|passing)" data-reporter="([^"]+)">(.*?)</tr>', body, re.S)
    return [
        (kind, name, [_text(cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)])
        for kind, name, row in rows
    ]


def test_rfc7489_7_2_rfc8460_4_the_page_shows_who_reported_each_domain(
    reported, signed_in, store, web_settings
) -> None:
    """Per domain, a row per reporter: the share of its messages (sessions) that failed, largest
    first and marked, then its reports, the period they cover and its numbers (SPF and DKIM as the
    receiver's DMARC evaluation saw them: passed and aligned)."""
    domains.add_domain(store, "other.test", web_settings)
    google_again = _dmarc(
        "google.com", "g-2", 1, [Record("192.0.2.25", 10), Record("198.51.100.77", 2, "quarantine", "fail", "fail")]
    )
    mail_y = replace(
        TlsSpec(org="Mail-Y", report_id="y-tls-1", successful=20, failures=[("sts-policy-fetch-error", 5)]),
        start=(TODAY - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(TODAY - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    _send(web_settings, [dmarc_mail(google_again, "gzip"), tls_mail(mail_y, "json")])
    other = Record("192.0.2.25", 5, header_from="other.test", dkim_domain="other.test", spf_domain="other.test")
    about_other = replace(_dmarc("google.com", "g-o", 1, [other]), domain="other.test")
    _send(web_settings, [dmarc_mail(about_other, "zip", "postmaster@other.test")], "postmaster@other.test")

    page = signed_in.get("/admin/reports").text
    d1, d2, d3 = ((TODAY - timedelta(days=n)).date() for n in (1, 2, 3))
    google = "google.com noreply-dmarc-support@google.com"
    assert _reporters(page, "dmarc-reporters-example.test") == [
        # 16 of yahoo's 46 failed DMARC (the newsletter's 12, the forger's 4): first
        ("failing", "yahoo.com", ["yahoo.com noreply-dmarc-support@yahoo.com", "34.8% (16)", "1", f"{d2} – {d2}",
                                  "46", "30", "30", "30"]),
        # 11 of google's 141, in two reports three days apart
        ("failing", "google.com", [google, "7.8% (11)", "2", f"{d3} – {d1}", "141", "130", "130", "130"]),
    ]  # fmt: skip
    assert _reporters(page, "dmarc-reporters-other.test") == [
        ("passing", "google.com", [google, "0.0% (0)", "1", f"{d1} – {d1}", "5", "5", "5", "5"]),
    ]
    contact = "sts-reporting@company-x.example"
    assert _reporters(page, "tls-reporters-example.test") == [
        ("failing", "Mail-Y", [f"Mail-Y {contact}", "20.0% (5)", "1", f"{d1} – {d1}", "20", "5"]),
        ("failing", "Company-X", [f"Company-X {contact}", "0.3% (17)", "1", f"{d2} – {d2}", "5326", "17"]),
    ]
    # One domain chosen: its tables only.
    one = signed_in.get("/admin/reports?domain=other.test").text
    assert _reporters(one, "dmarc-reporters-other.test")[0][1] == "google.com"
    assert 'id="dmarc-reporters-example.test"' not in one
    assert 'id="tls-reporters-example.test"' not in one


def test_the_page_filters_by_domain_and_period(reported, signed_in, store, web_settings) -> None:
    domains.add_domain(store, "other.test", web_settings)
    other = _text(signed_in.get("/admin/reports?domain=other.test").text)
    assert "No DMARC report about other.test in the last 30 days" in other
    assert "No TLS report about other.test in the last 30 days" in other
    assert "175 messages" in _text(signed_in.get("/admin/reports?domain=example.test&days=7").text)
    assert signed_in.get("/admin/reports?domain=nowhere.test").status_code == 404


@pytest.fixture
def client(api, certs):
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=30,
    ) as c:
        yield c


def test_the_api_gives_the_same_numbers(reported, client, store) -> None:
    _, secret = tokens.create_token(store, "reports", ["reports:read"])
    headers = {"authorization": f"Bearer {secret}"}
    found = client.get("/v1/reports/dmarc", params={"domain": "example.test"}, headers=headers)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["messages"], body["dmarc_pass"], body["spf_pass"], body["dkim_pass"]) == (175, 150, 150, 150)
    assert [s["source_ip"] for s in body["sources"]] == ["198.51.100.77", "203.0.113.80", "192.0.2.25"]
    assert body["sources"][0]["failing"] == 13
    assert body["sources"][2]["name"] == "mail-out.example.test"
    assert [(r["org_name"], r["reports"], r["count"]) for r in body["reporters"]] == [
        ("google.com", 1, 129),
        ("yahoo.com", 1, 46),
    ]
    assert [r["report_id"] for r in body["reports"]] == ["y-1", "g-1"]
    # Who reported, per domain, as the page shows it: the largest failing share first.
    yahoo, google = body["by_reporter"]["example.test"]
    assert (yahoo["org_name"], yahoo["emails"], yahoo["reports"]) == (
        "yahoo.com",
        ["noreply-dmarc-support@yahoo.com"],
        1,
    )
    assert (yahoo["messages"], yahoo["spf_pass"], yahoo["dkim_pass"], yahoo["dmarc_pass"], yahoo["failing"]) == (
        46,
        30,
        30,
        30,
        16,
    )
    assert round(yahoo["failing_share"], 1) == 34.8
    assert (google["org_name"], google["failing"], google["begin"]) == (
        "google.com",
        9,
        (TODAY - timedelta(days=3)).isoformat().replace("+00:00", "Z"),
    )
    assert body["reports"][0]["rows"] is None
    one = client.get(f"/v1/reports/dmarc/{body['reports'][0]['id']}", headers=headers).json()
    assert [(r["source_ip"], r["count"]) for r in one["rows"]] == [
        ("192.0.2.25", 30),
        ("203.0.113.80", 12),
        ("198.51.100.77", 4),
    ]
    tls = client.get("/v1/reports/tls", headers=headers).json()
    assert (tls["successful"], tls["failed"]) == (5326, 17)
    assert [(f["result_type"], f["sessions"]) for f in tls["failures"]] == [
        ("certificate-expired", 14),
        ("starttls-not-supported", 3),
    ]
    assert tls["failures"][0]["sending_ips"] == ["2001:db8:abcd:0012::1"]
    (company_x,) = tls["by_reporter"]["example.test"]
    assert (company_x["org_name"], company_x["contacts"], company_x["reports"]) == (
        "Company-X",
        ["sts-reporting@company-x.example"],
        1,
    )
    assert (company_x["successful"], company_x["failed"], round(company_x["failing_share"], 2)) == (5326, 17, 0.32)
    detail = client.get(f"/v1/reports/tls/{tls['reports'][0]['id']}", headers=headers).json()
    assert detail["domains"] == ["example.test"]
    assert client.get("/v1/reports/tls/000000000000000000000000", headers=headers).status_code == 404


def test_the_reports_need_their_scope(client, store) -> None:
    _, secret = tokens.create_token(store, "logs", ["logs:read", "domains:read"])
    for path in ("/v1/reports/dmarc", "/v1/reports/tls", "/v1/reports/dmarc/x", "/v1/reports/tls/x"):
        r = client.get(path, headers={"authorization": f"Bearer {secret}"})
        assert r.status_code == 403, path
        assert r.json()["required_scope"] == "reports:read"
    assert client.get("/v1/reports/dmarc?days=0", headers={"authorization": f"Bearer {secret}"}).status_code in (
        403,
        422,
    )


@pytest.mark.slow
def test_the_page_in_chromium(reported, signed_in, web) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = shots_dir("reports")
    base = f"https://127.0.0.1:{web.ports['web']}"
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"{base}/admin/login")
            page.get_by_label("Email address").fill(ADMIN[0])
            page.get_by_label("Password").fill(ADMIN[1])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Reports").click()
            expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
            expect(page.locator("#dmarc-totals")).to_contain_text("175 messages reported by 2 receivers")
            expect(page.locator("svg.chart").first).to_be_visible()
            expect(page.locator("#sources-table tbody tr").first).to_have_class("failing")
            expect(page.locator("#sources-table tbody tr").first).to_contain_text("fails DMARC")
            expect(page.locator("#tls-failures-table")).to_contain_text("certificate-expired")
            reporters = page.locator('[id="dmarc-reporters-example.test"]')
            expect(reporters.locator("caption")).to_have_text("example.test")
            expect(reporters.locator("tbody tr").first).to_have_class("failing")
            expect(reporters.locator("tbody tr").first).to_contain_text("yahoo.com")
            expect(reporters.locator("tbody tr").first).to_contain_text("34.8% (16)")
            expect(page.locator('[id="tls-reporters-example.test"]')).to_contain_text("Company-X")
            page.screenshot(path=str(shots / "01-reports.png"), full_page=True)
            reporters.screenshot(path=str(shots / "03-who-reported.png"))
            page.get_by_label("Domain", exact=True).select_option("example.test")
            page.get_by_label("Period", exact=True).select_option("7")
            page.get_by_role("button", name="Show").click()
            expect(page).to_have_url(re.compile(r"domain=example\.test&days=7"))
            expect(page.get_by_role("heading", name="DMARC: who sent mail as example.test")).to_be_visible()
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.screenshot(path=str(shots / "02-one-domain-on-a-phone.png"), full_page=True)
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-reports.png",
        "02-one-domain-on-a-phone.png",
        "03-who-reported.png",
    ]
