"""The web admin's Deliverability page: ``sealmail doctor``'s report on a page, problems first with
their fixes, run by a button and kept a while, without holding up the web server meanwhile.

Real parts: the web component (which also serves example.test's MTA-STS policy, fetched by the
checks over HTTPS as a sender would), dnsmasq publishing the app's own records with the PTR of
203.0.113.5 missing and Spamhaus refusing the query (127.255.255.254), and headless chromium for
the screenshots (``$SEALMAIL_TEST_OUTPUT/deliverability``, default ``test-output/``).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from browserkit import launch, shots_dir

from sealmail.services import domains
from sealmail.services.dnsrecords import records_for
from sealmail.tls.devca import ensure_dev_certificates

from dnsserver import DnsServer
from doctorkit import DOMAIN, HOST, IPV4, blocklist_name, good_zone
from support import free_port
from webkit import ADMIN

pytestmark = pytest.mark.tool("dnsmasq")

NAMES = (HOST, DOMAIN, *(f"{n}.{DOMAIN}" for n in ("mta-sts", "autoconfig", "autodiscover", "imap", "smtp")))


@pytest.fixture
def certs(tmp_path: Path):
    """The web component's certificate covers every name the domain leads to this host by."""
    return ensure_dev_certificates(tmp_path / "tls", NAMES)


@pytest.fixture
def dns(tmp_path: Path):
    server = DnsServer(tmp_path / "dns")  # its port is known now; it starts once the domain exists
    (tmp_path / "dns").mkdir()
    yield server
    server.stop()


@pytest.fixture
def web_settings(web_settings, certs, dns):
    port = free_port()  # the web component answers the MTA-STS policy: the checks fetch it here
    return web_settings.model_copy(
        update={
            "web_port": port,
            "mta_sts_port": port,
            "smtp_ca_file": certs.ca_cert,
            "public_ipv4": IPV4,
            "components": ["web"],
            "doctor_port25_domains": [],
            "doctor_timeout": 2.0,
            "dns_servers": [dns.address],
        }
    )


def publish(dns: DnsServer, store, web_settings, silent_port: int | None = None) -> None:
    """example.test as the app wants it, but with no PTR for 203.0.113.5 and Spamhaus refusing."""
    domains.add_domain(store, DOMAIN, web_settings)
    zone = good_zone(records_for(web_settings, DOMAIN))
    zone.drop("A", HOST)
    zone.bare[HOST] = [IPV4]
    zone.listed.append((blocklist_name(IPV4, "zen.spamhaus.org"), "127.255.255.254"))
    if silent_port is not None:
        zone.forwards.append(("spamcop.net", f"127.0.0.1#{silent_port}"))
    zone.publish(dns)
    dns.start()


def findings(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<li class="finding (\w+)" data-id="([^"]+)">', page)


def test_the_report_lists_problems_first_with_their_fixes(signed_in, store, web_settings, dns) -> None:
    publish(dns, store, web_settings)
    page = signed_in.get("/admin/deliverability").text
    assert "Not checked in the last 10 minutes." in page
    assert 'href="/admin/deliverability" aria-current="page"' in page
    answer = signed_in.post("/admin/deliverability")
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/deliverability")
    page = signed_in.get("/admin/deliverability").text
    shown = findings(page)
    assert shown[0] == ("problem", f"ptr.missing:{IPV4}")
    assert shown[1] == ("warning", f"blocklist.refused:zen.spamhaus.org:{IPV4}")
    assert {severity for severity, _ in shown[2:]} == {"ok"}
    ids = {i for _, i in shown}
    for passed in (
        f"dkim.ok:{DOMAIN}:rsa1",
        f"spf.ok:{DOMAIN}:{IPV4}",
        f"mta-sts.ok:{DOMAIN}:policy",
        "certificate.ok:web",
    ):
        assert passed in ids, shown
    assert re.search(r"<h2 id=\"result\">1 problem, 1 warning, \d+ passed</h2>", page)
    assert f"{IPV4} has no PTR record (reverse DNS)" in page
    assert (
        f'<span class="fix-label">Fix:</span> Ask your VPS provider to set the PTR (reverse DNS) of {IPV4} to {HOST}'
        in page
    )
    assert "(from the settings SEALMAIL_PUBLIC_IPV4 and SEALMAIL_PUBLIC_IPV6)" in page
    checked = re.search(r'<time datetime="([^"]+)">', page)[1]
    again = signed_in.get("/admin/deliverability").text  # kept: not run again by a page view
    assert re.search(r'<time datetime="([^"]+)">', again)[1] == checked


def test_a_run_does_not_hold_up_other_requests(signed_in, store, web_settings, dns, certs) -> None:
    """A blocklist that never answers keeps the run busy for its 2 s: pages keep answering meanwhile."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        publish(dns, store, web_settings, silent.getsockname()[1])
        signed_in.get("/admin/deliverability")  # the CSRF token of the form
        cookies, token = dict(signed_in.client.cookies), signed_in.csrf
        done: dict[str, float] = {}

        def run() -> None:
            began = time.monotonic()
            verify = ssl.create_default_context(cafile=str(certs.ca_cert))
            with httpx.Client(base_url=str(signed_in.client.base_url), verify=verify) as client:
                client.cookies.update(cookies)
                client.post("/admin/deliverability", data={"csrf": token}, timeout=60)
            done["run"] = time.monotonic() - began

        worker = threading.Thread(target=run)
        worker.start()
        pages = []
        time.sleep(0.3)
        while "run" not in done and len(pages) < 50:
            began = time.monotonic()
            assert signed_in.get("/admin").status_code == 200
            pages.append(time.monotonic() - began)
        worker.join(60)
    finally:
        silent.close()
    assert done["run"] >= 2.0  # the silent list's timeout
    answered_meanwhile = pages[: len(pages) - 1] or pages
    assert answered_meanwhile, "no page was asked while the checks ran"
    assert max(answered_meanwhile) < 1.5, pages
    page = signed_in.get("/admin/deliverability").text
    assert ("warning", f"blocklist.unchecked:bl.spamcop.net:{IPV4}") in findings(page)


@pytest.mark.slow
def test_the_page_in_chromium(signed_in, store, web, web_settings, dns) -> None:
    from playwright.sync_api import expect, sync_playwright

    publish(dns, store, web_settings)
    shots = shots_dir("deliverability")
    base = f"https://127.0.0.1:{web.ports['web']}"
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"{base}/admin/login")
            page.get_by_label("Email address").fill(ADMIN[0])
            page.get_by_label("Password").fill(ADMIN[1])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Deliverability").click()
            expect(page.get_by_role("heading", name="Deliverability")).to_be_visible()
            page.screenshot(path=str(shots / "01-not-checked-yet.png"), full_page=True)
            page.get_by_role("button", name="Run the checks").click()
            expect(page.get_by_role("heading", name=re.compile(r"^1 problem, 1 warning, \d+ passed$"))).to_be_visible()
            items = page.locator("ol.findings > li")
            expect(items.first).to_have_class("finding problem")
            expect(items.first).to_contain_text(f"{IPV4} has no PTR record")
            expect(items.first.locator(".fix")).to_contain_text(f"set the PTR (reverse DNS) of {IPV4} to {HOST}")
            expect(items.nth(1)).to_have_class("finding warning")
            expect(items.nth(2)).to_have_class("finding ok")
            page.screenshot(path=str(shots / "02-report.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.screenshot(path=str(shots / "03-report-on-a-phone.png"), full_page=True)
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-not-checked-yet.png",
        "02-report.png",
        "03-report-on-a-phone.png",
    ]
