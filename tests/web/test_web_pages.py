"""The web admin's pages over HTTPS: the DNS page against a real DNS server, aliases and passwords,
logs with filters, the dashboard, and the public MTA-STS and autoconfig documents."""

from __future__ import annotations

import re
import ssl
from datetime import timedelta

import httpx
import pytest

from sealmail.config.models import LogEntry, LogQuery, now
from sealmail.services import credentials
from sealmail.services.dnsrecords import records_for

from dnsserver import DnsServer
from webkit import ADMIN


@pytest.fixture
def dns(tmp_path):
    # MX, SPF and the IMAP SRV record right, DKIM RSA published with another key, the rest missing.
    server = DnsServer(tmp_path / "dns")
    (tmp_path / "dns").mkdir()
    server.mx("example.test", "mail.example.test", 10)
    server.a("mail.example.test", "127.0.0.1")
    server.txt("example.test", "v=spf1 mx -all")
    server.txt("rsa1._domainkey.example.test", "v=DKIM1; k=rsa; p=AAAAnotthekey")
    server.srv("_imaps._tcp.example.test", "mail.example.test", 993)
    server.cname("autoconfig.example.test", "mail.example.test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_settings(web_settings, dns):
    return web_settings.model_copy(update={"dns_servers": [dns.address], "dns_timeout": 2.0})


def test_wizard_ends_on_the_dns_page_with_live_checks(signed_in, web_settings) -> None:
    r = signed_in.get("/setup/domain")
    assert "Your first domain" in r.text
    r = signed_in.post("/setup/domain", {"name": "example.test"})
    assert r.headers["location"] == "/admin/domains/example.test/dns?setup=1"
    page = signed_in.get(r.headers["location"]).text
    rows = re.findall(r'<tr class="st-(\w+)">.*?<td>(\w+).*?<code class="copyable">([^<]+)</code>', page, re.S)
    status = {(kind, name): st for st, kind, name in rows}
    assert status[("MX", "example.test")] == "pass"
    assert status[("TXT", "example.test")] == "pass"
    assert status[("TXT", "rsa1._domainkey.example.test")] == "wrong"
    assert status[("TXT", "ed1._domainkey.example.test")] == "missing"
    assert status[("TXT", "_dmarc.example.test")] == "missing"
    assert status[("SRV", "_imaps._tcp.example.test")] == "pass"
    assert status[("SRV", "_pop3s._tcp.example.test")] == "missing"
    assert status[("CNAME", "autoconfig.example.test")] == "pass"
    assert status[("CNAME", "mta-sts.example.test")] == "missing"
    # Every record the domain needs is listed with the exact value to set (MX, SPF, DKIM, DMARC,
    # MTA-STS, TLS-RPT, autoconfig SRV and CNAME).
    expected = records_for(web_settings, "example.test")
    assert len(rows) == len(expected)
    for record in expected:
        assert record.value in page
    assert "a different public key is published" in page
    assert "https://mta-sts.example.test/.well-known/mta-sts.txt" in page


def test_domains_add_and_remove_with_confirmation(signed_in, store) -> None:
    signed_in.get("/admin/domains")
    assert signed_in.post("/admin/domains", {"name": "bad domain"}).status_code == 422
    assert signed_in.post("/admin/domains", {"name": "Universitéxyz.FR"}).status_code == 303
    page = signed_in.get("/admin/domains").text
    assert "universitéxyz.fr" in page
    assert "xn--universitxyz-jeb.fr" in page
    signed_in.post("/admin/domains/xn--universitxyz-jeb.fr/delete", {"confirm": "wrong"})
    assert len(store.list_domains()) == 1
    assert "to confirm the removal" in signed_in.get("/admin/domains").text
    signed_in.post("/admin/domains/xn--universitxyz-jeb.fr/delete", {"confirm": "universitéxyz.fr"})
    assert store.list_domains() == []


def test_domain_spam_thresholds_form(signed_in, store) -> None:
    """Issue 21: the domain's spam page saves thresholds (a decimal comma too), an empty field
    clears one, and a bad combination comes back with the reason and the values typed, changing nothing."""
    signed_in.get("/admin/domains")
    signed_in.post("/admin/domains", {"name": "example.test"})
    assert 'href="/admin/domains/example.test/spam"' in signed_in.get("/admin/domains").text
    assert signed_in.get("/admin/domains/example.test/spam").status_code == 200
    r = signed_in.post("/admin/domains/example.test/spam", {"reject": "12", "defer": "", "junk": "4,5"})
    assert (r.status_code, r.headers["location"]) == (303, "/admin/domains/example.test/spam")
    found = store.get_domain("example.test")
    assert (found.spam_reject, found.spam_defer, found.spam_junk) == (12.0, None, 4.5)
    page = signed_in.get("/admin/domains/example.test/spam").text
    assert 'name="reject" inputmode="decimal" value="12"' in page
    assert 'name="junk" inputmode="decimal" value="4.5"' in page
    r = signed_in.post("/admin/domains/example.test/spam", {"reject": "3", "defer": "", "junk": "4.5"})
    assert r.status_code == 422
    assert "the reject threshold (3) must be above the junk threshold (4.5)" in r.text
    assert 'name="reject" inputmode="decimal" value="3"' in r.text
    assert signed_in.post("/admin/domains/example.test/spam", {"reject": "many"}).status_code == 422
    assert store.get_domain("example.test").spam_reject == 12.0
    signed_in.post("/admin/domains/example.test/spam", {"reject": "", "defer": "", "junk": ""})
    found = store.get_domain("example.test")
    assert (found.spam_reject, found.spam_defer, found.spam_junk) == (None, None, None)
    assert signed_in.get("/admin/domains/absent.test/spam").status_code == 404


def test_aliases_create_search_edit_password_and_delete(signed_in, store, web_settings) -> None:
    signed_in.get("/admin/domains")
    signed_in.post("/admin/domains", {"name": "example.test"})
    signed_in.get("/admin/aliases/new?domain=example.test")
    r = signed_in.post("/admin/aliases", {"address": "nobody@elsewhere.test", "storage": "on", "enabled": "on"})
    assert r.status_code == 422
    assert "not hosted here" in r.text
    r = signed_in.post(
        "/admin/aliases",
        {"address": "ann@example.test", "storage": "on", "enabled": "on", "quota": "2G", "description": "sales lead"},
    )
    alias_path = r.headers["location"]
    signed_in.post(
        "/admin/aliases", {"address": "ops@example.test", "recipients": "a@example.org\nhttps://h.example.org/x"}
    )
    assert "sales lead" in signed_in.get("/admin/aliases?q=SALES").text
    listing = signed_in.get("/admin/aliases?q=h.example.org").text
    assert "ops@example.test" in listing
    assert "ann@example.test" not in listing

    page = signed_in.post(f"{alias_path}/password").text
    password = re.search(r'id="new-password">([^<]+)<', page).group(1)
    assert "only time the password is shown" in page
    for cell in ("IMAP", "993", "SMTP", "465", "SSL/TLS", "mail.example.test", "<code>ann@example.test</code>"):
        assert cell in page
    credentials.unlock(store, web_settings, "ann@example.test", password)
    # The page is not kept by the browser or a proxy.
    assert signed_in.client.post(f"{alias_path}/password", data={"csrf": signed_in.csrf}).headers["cache-control"] == (
        "no-store"
    )

    r = signed_in.post(alias_path, {"recipients": "", "quota": "", "disabled_reply": "defer", "description": "x"})
    assert r.status_code == 422  # no storage, no recipients
    assert "mail to it is lost" in r.text
    r = signed_in.post(alias_path, {"storage": "on", "quota": "", "disabled_reply": "defer", "description": "x"})
    assert r.status_code == 303
    alias = next(a for a in store.list_aliases() if a.name == "ann")
    assert (alias.enabled, alias.disabled_reply, alias.quota) == (False, "defer", None)
    signed_in.post(f"{alias_path}/delete")
    assert [a.name for a in store.list_aliases()] == ["ops"]


def test_dashboard_shows_usage_and_thirty_days_of_traffic(signed_in, store) -> None:
    signed_in.get("/admin/domains")
    signed_in.post("/admin/domains", {"name": "example.test"})
    signed_in.post("/admin/aliases", {"address": "ann@example.test", "storage": "on", "enabled": "on", "quota": "1M"})
    alias = store.list_aliases()[0]
    from sealmail.config.models import AliasCredential

    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="x", usage_bytes=512 * 1024))
    today = now()
    for status, days_ago in [("stored", 0), ("stored", 0), ("delivered", 1), ("deferred", 3), ("bounced", 40)]:
        e = LogEntry("delivery", "mx", status)
        e.time = today - timedelta(days=days_ago)
        store.append_log(e)
    page = signed_in.get("/admin").text
    assert "<svg" in page
    assert 'role="img"' in page
    assert "accepted: 2" in page
    assert "delivered: 1" in page
    assert "deferred: 1" in page
    assert "bounced: 0" in page  # 40 days ago is outside the chart
    assert 'value="50.0"' in page  # 512 KiB of 1 MiB
    assert "<script" not in page.split("</head>")[1]


def test_logs_pages_filter_and_page(signed_in, store) -> None:
    base = now() - timedelta(hours=1)
    for i in range(60):
        e = LogEntry(
            "delivery", "jobs", "delivered", domain="example.test", address=f"u{i}@example.test", detail=f"to r{i}"
        )
        e.time = base + timedelta(seconds=i)
        store.append_log(e)
    store.append_log(LogEntry("delivery", "mx", "stored", domain="example.test", address="in@example.test"))
    store.append_log(LogEntry("error", "jobs", "failed", domain="example.test", detail="DNS timeout"))
    page = signed_in.get("/admin/emails").text
    assert "u59@example.test" in page
    assert "in@example.test" not in page  # outbound by default
    assert "u9@example.test" not in page  # 50 per page
    older = re.search(r'href="\?([^"]*cursor=[^"]+)"', page).group(1).replace("&amp;", "&")
    assert "u9@example.test" in signed_in.get(f"/admin/emails?{older}").text
    assert "in@example.test" in signed_in.get("/admin/emails?direction=inbound").text
    assert "u3@example.test</td>" in signed_in.get("/admin/emails?address=u3@example.test").text
    bad = signed_in.get("/admin/emails?since=yesterday")
    assert bad.status_code == 422
    assert "not an ISO 8601 date" in bad.text
    assert "DNS timeout" in signed_in.get("/admin/logs").text
    audit = signed_in.get("/admin/logs?kind=audit").text
    assert "admin.create" in audit


def test_tokens_page_shows_the_secret_once(signed_in, store) -> None:
    signed_in.get("/admin/tokens")
    r = signed_in.post("/admin/tokens", {"name": "backup"})
    assert r.status_code == 422
    assert "at least one scope" in r.text
    r = signed_in.client.post(
        "/admin/tokens", data={"csrf": signed_in.csrf, "name": "backup", "scopes": ["logs:read", "aliases:read"]}
    )
    secret = re.search(r'id="new-token">(sm_[^<]+)<', r.text).group(1)
    (token,) = store.list_tokens()
    assert token.scopes == ["aliases:read", "logs:read"]
    listing = signed_in.get("/admin/tokens").text
    assert secret not in listing
    signed_in.post(f"/admin/tokens/{token.id}/revoke")
    assert store.list_tokens()[0].revoked_at is not None


def test_audit_entries_say_who_what_and_where(signed_in, store) -> None:
    """The pages write the same audit entries as the API (test_api.py) for the same changes, under
    the admin's address and from the browser's address."""
    signed_in.post("/admin/domains", {"name": "example.test"})
    alias_path = signed_in.post("/admin/aliases", {"address": "me@example.test", "storage": "on", "enabled": "on"})
    alias_path = alias_path.headers["location"]
    signed_in.post(alias_path, {"storage": "on", "enabled": "on", "quota": "1G", "disabled_reply": "reject"})
    signed_in.post(f"{alias_path}/password")
    signed_in.post(f"{alias_path}/password", {"reset_mailbox": "on"})
    signed_in.client.post(
        "/admin/tokens", data={"csrf": signed_in.csrf, "name": "t2", "scopes": ["logs:read", "aliases:read"]}
    )
    signed_in.post(f"{alias_path}/delete")
    who = f"by {ADMIN[0]}"
    found = store.query_logs(LogQuery("audit")).entries
    entries = [(e.status, e.domain, e.address, e.detail) for e in reversed(found) if e.status != "admin.create"]
    assert entries == [
        ("domain.add", "example.test", None, who),
        ("alias.create", "example.test", "me@example.test", who),
        ("alias.update", "example.test", "me@example.test", who),
        ("alias.password", "example.test", "me@example.test", f"{who}: generated"),
        ("alias.password", "example.test", "me@example.test", f"{who}: reset mailbox"),
        ("token.create", None, None, f"{who}: t2 (aliases:read, logs:read)"),
        ("alias.remove", "example.test", "me@example.test", who),
    ]
    assert {(e.component, e.peer) for e in found} == {("web", "127.0.0.1")}


def test_an_admin_session_can_mint_every_scope(signed_in, store) -> None:
    """The scope bound applies to tokens minting tokens (the API); the administrator grants any scope."""
    from sealmail.services.tokens import SCOPES

    signed_in.get("/admin/tokens")
    r = signed_in.client.post("/admin/tokens", data={"csrf": signed_in.csrf, "name": "all", "scopes": list(SCOPES)})
    assert r.status_code == 200
    (token,) = store.list_tokens()
    assert token.scopes == list(SCOPES)


def test_mta_sts_policy_and_autoconfig_are_public(signed_in, web, certs, web_settings) -> None:
    signed_in.get("/admin/domains")
    signed_in.post("/admin/domains", {"name": "example.test"})
    with httpx.Client(
        base_url=f"https://127.0.0.1:{web.ports['web']}", verify=ssl.create_default_context(cafile=str(certs.ca_cert))
    ) as anonymous:
        r = anonymous.get("/.well-known/mta-sts.txt", headers={"host": "mta-sts.example.test"})
        assert r.status_code == 200
        assert r.text == "version: STSv1\nmode: enforce\nmx: mail.example.test\nmax_age: 604800\n"
        assert r.headers["content-type"].startswith("text/plain")
        assert anonymous.get("/.well-known/mta-sts.txt", headers={"host": "mta-sts.other.test"}).status_code == 404
        r = anonymous.get("/mail/config-v1.1.xml?emailaddress=ann@example.test")
        assert r.status_code == 200
        assert "<hostname>mail.example.test</hostname>" in r.text
        assert "<port>993</port>" in r.text
        assert "<port>465</port>" in r.text
        assert "%EMAILADDRESS%" in r.text
        r = anonymous.get("/.well-known/autoconfig/mail/config-v1.1.xml", headers={"host": "example.test"})
        assert r.status_code == 200
        assert anonymous.get("/mail/config-v1.1.xml?emailaddress=x@other.test").status_code == 404
