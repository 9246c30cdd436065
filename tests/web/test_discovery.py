"""Client discovery: a client that knows only an address (and a password) finds every service.

- RFC 6764 §5 well-known redirects on the web port to the CalDAV/CardDAV context path on their own
  ports, followed by a real client (Debian's vdirsyncer);
- Thunderbird autoconfig and Microsoft Autodiscover (POX) with the settings' host and ports;
- the Apple configuration profile of an alias (web admin);
- the plain-HTTP port: ACME HTTP-01 answers (RFC 8555 §8.3) and redirects to HTTPS.
"""

from __future__ import annotations

import plistlib
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from defusedxml import ElementTree

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.services.clientconfig import (
    AUTODISCOVER_NS,
    AUTODISCOVER_OUTLOOK_NS,
    AUTODISCOVER_REQUEST_NS,
)

from support import ComponentThread, free_port, require_tool

CALDAV_PORT = free_port()
CARDDAV_PORT = free_port()


@pytest.fixture
def web_settings(web_settings):
    # Fixed DAV ports: the web component names them in its redirects, the DAV component listens on them.
    return web_settings.model_copy(update={"caldav_port": CALDAV_PORT, "carddav_port": CARDDAV_PORT})


def _client(web, certs) -> httpx.Client:
    return httpx.Client(
        base_url=f"https://127.0.0.1:{web.ports['web']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=30,
    )


def _add_domain(web_settings, *names: str) -> None:
    store = SQLiteConfigStore(web_settings.config_db_path)
    try:
        for name in names:
            domains.add_domain(store, name)
    finally:
        store.close()


# ---- RFC 6764 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "port"), [("caldav", CALDAV_PORT), ("carddav", CARDDAV_PORT)], ids=["caldav", "carddav"]
)
@pytest.mark.parametrize("method", ["GET", "PROPFIND"])
def test_well_known_dav_uris_redirect_to_the_dav_port(web, certs, service, port, method) -> None:
    """RFC 6764 §5: /.well-known/caldav and /.well-known/carddav redirect (301) to the context path of
    the service, here on its own TLS port of the mail host; no sign-in is needed for the redirect."""
    with _client(web, certs) as anonymous:
        r = anonymous.request(method, f"/.well-known/{service}", headers={"Depth": "0"})
    assert r.status_code == 301
    assert r.headers["location"] == f"https://mail.example.test:{port}/"


@pytest.fixture
def dav_account(web_settings):
    """The DAV component on the ports the web component redirects to, with one alias and its password."""
    store = SQLiteConfigStore(web_settings.config_db_path)
    try:
        domains.add_domain(store, "example.test")
        aliases.add_alias(store, "alice@example.test", storage=True)
        password = credentials.set_password(store, web_settings, "alice@example.test")
    finally:
        store.close()
    dav = ComponentThread("dav", web_settings.model_copy(update={"bind_addresses": ["127.0.0.1"]}))
    yield "alice@example.test", password
    dav.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("storage", "collection"), [("caldav", "calendar"), ("carddav", "contacts")])
def test_vdirsyncer_discovers_from_the_web_address_alone(
    web_settings, dav_account, tmp_path: Path, certs, storage, collection
) -> None:
    """RFC 6764 §5-§6: from https://localhost:<web port> alone, the well-known URI leads to the DAV
    service's context path; a real client (vdirsyncer) finds the principal there (RFC 5397), its home
    set, and the calendar and the address book.

    The first hop is followed here with httpx, without credentials (RFC 6764 §5 needs none):
    vdirsyncer 0.19 (aiohttp) drops its credentials on a redirect to another origin (another port)
    and does not answer the 401 challenge that follows, so given the web address it stops there."""
    web = ComponentThread("web", web_settings.model_copy(update={"hostname": "localhost"}))
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(certs.ca_cert))) as anonymous:
            hop = anonymous.request("PROPFIND", f"https://localhost:{web.ports['web']}/.well-known/{storage}")
        assert hop.status_code == 301
        context = hop.headers["location"]
        assert context == f"https://localhost:{web_settings.model_dump()[storage + '_port']}/"
    finally:
        web.stop()
    address, password = dav_account
    config = tmp_path / f"{storage}.conf"
    config.write_text(
        f"""[general]
status_path = "{tmp_path / "status"}/"

[pair p]
a = "local"
b = "remote"
collections = ["from b"]

[storage local]
type = "filesystem"
path = "{tmp_path / "local"}/"
fileext = ".x"

[storage remote]
type = "{storage}"
url = "{context}"
username = "{address}"
password = "{password}"
verify = "{certs.ca_cert}"
"""
    )
    tool = require_tool("vdirsyncer")
    done = subprocess.run(
        [tool, "-c", str(config), "discover"], input="y\n", capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'- "{collection}"' in done.stderr  # found on the server
    assert (tmp_path / "local" / collection).is_dir(), done.stdout + done.stderr  # and mirrored locally


def test_dav_ports_keep_their_own_well_known_redirects(web_settings, dav_account, certs) -> None:
    """RFC 6764 §5 on the DAV ports themselves: /.well-known/caldav|carddav lead to the context path."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(certs.ca_cert))) as anonymous:
        for port in (CALDAV_PORT, CARDDAV_PORT):
            for service in ("caldav", "carddav"):
                r = anonymous.request("PROPFIND", f"https://localhost:{port}/.well-known/{service}")
                assert r.status_code == 301
                assert r.headers["location"] == "/"


# ---- Thunderbird autoconfig ---------------------------------------------------------------------------
def test_autoconfig_names_the_settings_host_and_ports(web, certs, web_settings) -> None:
    """Thunderbird's clientConfig: IMAP, POP3 and SMTP over implicit TLS on the configured ports, the
    full address as user name, and the CalDAV/CardDAV servers on their own ports."""
    _add_domain(web_settings, "example.test")
    with _client(web, certs) as anonymous:
        by_address = anonymous.get("/mail/config-v1.1.xml", params={"emailaddress": "ann@example.test"})
        by_host = anonymous.get("/mail/config-v1.1.xml", headers={"host": "autoconfig.example.test"})
        well_known = anonymous.get("/.well-known/autoconfig/mail/config-v1.1.xml", headers={"host": "example.test"})
        unknown = anonymous.get("/mail/config-v1.1.xml", headers={"host": "autoconfig.other.test"})
    assert by_address.text == by_host.text == well_known.text
    assert unknown.status_code == 404
    root = ElementTree.fromstring(by_address.text)
    servers = {
        (s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"), s.findtext("username"))
        for s in root.iter()
        if s.tag in ("incomingServer", "outgoingServer")
    }
    assert servers == {
        ("imap", "mail.example.test", str(web_settings.imaps_port), "SSL", "%EMAILADDRESS%"),
        ("pop3", "mail.example.test", str(web_settings.pop3s_port), "SSL", "%EMAILADDRESS%"),
        ("smtp", "mail.example.test", str(web_settings.submission_tls_port), "SSL", "%EMAILADDRESS%"),
    }
    assert root.findtext("calendar/serverURL") == f"https://mail.example.test:{CALDAV_PORT}/"
    assert root.findtext("addressBook/serverURL") == f"https://mail.example.test:{CARDDAV_PORT}/"


# ---- Microsoft Autodiscover (POX) ------------------------------------------------------------------
def _pox(address: str, schema: str = AUTODISCOVER_OUTLOOK_NS) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{AUTODISCOVER_REQUEST_NS}"><Request>'
        f"<EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
        "</Request></Autodiscover>"
    )


def _protocols(text: str) -> dict[str, dict[str, str]]:
    ns = {"r": AUTODISCOVER_NS, "o": AUTODISCOVER_OUTLOOK_NS}
    root = ElementTree.fromstring(text)
    assert root.tag == f"{{{AUTODISCOVER_NS}}}Autodiscover"
    account = root.find("o:Response/o:Account", ns)
    assert account is not None, text
    assert account.findtext("o:AccountType", namespaces=ns) == "email"
    assert account.findtext("o:Action", namespaces=ns) == "settings"
    out = {}
    for protocol in account.findall("o:Protocol", ns):
        fields = {child.tag.split("}")[1]: child.text or "" for child in protocol}
        out[fields["Type"]] = fields
    return out


def _error_code(text: str) -> str | None:
    return ElementTree.fromstring(text).findtext(
        f"{{{AUTODISCOVER_NS}}}Response/{{{AUTODISCOVER_NS}}}Error/{{{AUTODISCOVER_NS}}}ErrorCode"
    )


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"])
def test_autodiscover_pox_answers_imap_and_smtp_over_tls(web, certs, web_settings, path) -> None:
    """MS-OXDSCLI POX: the EMailAddress of the request comes back as the login name, with IMAP (993,
    SSL on) and SMTP (465, SSL on) on the mail host; no sign-in, on any hosted name."""
    _add_domain(web_settings, "example.test", "universitéxyz.fr")
    with _client(web, certs) as anonymous:
        r = anonymous.post(
            path,
            content=_pox("ann@example.test"),
            headers={"content-type": "text/xml", "host": "autodiscover.example.test"},
        )
        unicode_answer = anonymous.post(path, content=_pox("rémi@universitéxyz.fr").encode())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    protocols = _protocols(r.text)
    assert set(protocols) == {"IMAP", "SMTP"}
    assert protocols["IMAP"]["Server"] == protocols["SMTP"]["Server"] == "mail.example.test"
    assert protocols["IMAP"]["Port"] == str(web_settings.imaps_port) == "993"
    assert protocols["SMTP"]["Port"] == str(web_settings.submission_tls_port) == "465"
    for fields in protocols.values():
        assert fields["SSL"] == "on"
        assert fields["LoginName"] == "ann@example.test"
        assert fields["SPA"] == "off"
        assert fields["AuthRequired"] == "on"
    assert _protocols(unicode_answer.text)["IMAP"]["LoginName"] == "rémi@universitéxyz.fr"


def test_autodiscover_refuses_unknown_domains_and_bad_requests(web, certs, web_settings) -> None:
    """MS-OXDSCLI errors: 500 for an address this server does not host, 600 for an invalid request
    (no address, not XML, an XML bomb), 601 for another response schema; GET takes ?emailaddress=."""
    _add_domain(web_settings, "example.test")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f'<Autodiscover xmlns="{AUTODISCOVER_REQUEST_NS}"><Request><EMailAddress>&b;@example.test</EMailAddress>'
        "</Request></Autodiscover>"
    )
    with _client(web, certs) as anonymous:
        url = "/autodiscover/autodiscover.xml"
        assert _error_code(anonymous.post(url, content=_pox("ann@other.test")).text) == "500"
        assert _error_code(anonymous.post(url, content="not xml").text) == "600"
        assert _error_code(anonymous.post(url, content=_pox("")).text) == "600"
        assert _error_code(anonymous.post(url, content=bomb).text) == "600"
        assert _error_code(anonymous.post(url, content=_pox("ann@example.test", "urn:other")).text) == "601"
        assert anonymous.post(url, content=b"x" * 100_000).status_code == 413
        assert _error_code(anonymous.get(url).text) == "600"
        got = anonymous.get(url, params={"emailaddress": "ann@example.test"})
        assert _protocols(got.text)["IMAP"]["LoginName"] == "ann@example.test"


# ---- Apple configuration profile -----------------------------------------------------------------
def test_apple_profile_of_an_alias(signed_in, store, web_settings, browser) -> None:
    """The alias page links a .mobileconfig (application/x-apple-aspen-config) with a mail account
    (IMAP 993 + SMTP 465 over TLS), a CalDAV and a CardDAV account; hosts in A-labels, the address as
    user name, no password, the same PayloadUUIDs every time; signed-in admins only."""
    domains.add_domain(store, "universitéxyz.fr")
    alias = aliases.add_alias(store, "rémi@universitéxyz.fr", storage=True)
    page = signed_in.get(f"/admin/aliases/{alias.id}")
    link = f"/admin/aliases/{alias.id}/apple.mobileconfig"
    assert f'href="{link}"' in page.text
    assert "Download for Apple devices" in page.text
    r = signed_in.get(link)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-apple-aspen-config"
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    assert signed_in.get(link).content == r.content  # stable UUIDs: the same profile every time
    profile = plistlib.loads(r.content)
    assert profile["PayloadType"] == "Configuration"
    payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert set(payloads) == {"com.apple.mail.managed", "com.apple.caldav.account", "com.apple.carddav.account"}
    ascii_domain = "universitéxyz.fr".encode("idna").decode()
    login = f"rémi@{ascii_domain}"
    mail = payloads["com.apple.mail.managed"]
    assert mail["EmailAddress"] == "rémi@universitéxyz.fr"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == ("mail.example.test", 993)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == ("mail.example.test", 465)
    assert mail["IncomingMailServerUseSSL"] is mail["OutgoingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == mail["OutgoingMailServerUsername"] == login
    caldav, carddav = payloads["com.apple.caldav.account"], payloads["com.apple.carddav.account"]
    assert (caldav["CalDAVHostName"], caldav["CalDAVPort"], caldav["CalDAVUseSSL"]) == (
        "mail.example.test",
        CALDAV_PORT,
        True,
    )
    assert (carddav["CardDAVHostName"], carddav["CardDAVPort"], carddav["CardDAVUseSSL"]) == (
        "mail.example.test",
        CARDDAV_PORT,
        True,
    )
    principal = f"/r%C3%A9mi%40{ascii_domain}/"
    assert caldav["CalDAVPrincipalURL"] == f"https://mail.example.test:{CALDAV_PORT}{principal}"
    assert carddav["CardDAVPrincipalURL"] == f"https://mail.example.test:{CARDDAV_PORT}{principal}"
    assert caldav["CalDAVUsername"] == carddav["CardDAVUsername"] == login
    uuids = [profile["PayloadUUID"], *(p["PayloadUUID"] for p in profile["PayloadContent"])]
    assert len(set(uuids)) == 4
    assert not any(
        "password" in key.lower()
        for p in profile["PayloadContent"]
        for key in p
        if key != "OutgoingPasswordSameAsIncomingPassword"
    )

    anonymous = browser(auth=None)
    assert anonymous.get(link).status_code == 303  # to the sign-in page
    forwarding = aliases.add_alias(store, "fwd@universitéxyz.fr", recipients=["x@example.org"])
    assert signed_in.get(f"/admin/aliases/{forwarding.id}/apple.mobileconfig").status_code == 404


def test_apple_profile_hosts_are_a_labels(settings) -> None:
    """A Unicode mail host name appears in its A-label form (IDNA) in every payload."""
    from sealmail.services.clientconfig import apple_profile
    from sealmail.settings import Settings

    unicode_host = Settings(data_dir=settings.data_dir, hostname="mail.universitéxyz.fr")
    profile = plistlib.loads(apple_profile(unicode_host, "rémi@universitéxyz.fr", "rémi@universitéxyz.fr"))
    hosts = {v for p in profile["PayloadContent"] for k, v in p.items() if k.endswith("HostName")}
    assert hosts == {"mail." + "universitéxyz.fr".encode("idna").decode()}


# ---- the plain-HTTP port ---------------------------------------------------------------------------
@pytest.fixture
def plain(web_settings, tmp_path: Path):
    webroot = tmp_path / "acme"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    running = ComponentThread(
        "web", web_settings.model_copy(update={"http_port": free_port(), "acme_webroot": webroot})
    )
    yield running, webroot
    running.stop()


def _raw_get(port: int, target: str, host: str = "example.test") -> tuple[int, dict[str, str], bytes]:
    """A request line sent as is (no client-side path normalisation)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_http_port_serves_acme_challenges(plain, tmp_path: Path) -> None:
    """RFC 8555 §8.3: GET /.well-known/acme-challenge/<token> over plain HTTP answers the key
    authorization certbot's webroot method wrote; nothing outside that directory can be read."""
    running, webroot = plain
    port = running.ports["http"]
    challenges = webroot / ".well-known" / "acme-challenge"
    (challenges / "tok_EN-123").write_text("tok_EN-123.thumbprint")
    (webroot / "secret").write_text("not for you")
    (challenges / "link").symlink_to(webroot / "secret")
    status, headers, body = _raw_get(port, "/.well-known/acme-challenge/tok_EN-123")
    assert (status, body) == (200, b"tok_EN-123.thumbprint")
    assert "strict-transport-security" not in headers
    for target in (
        "/.well-known/acme-challenge/missing",
        "/.well-known/acme-challenge/../../secret",
        "/.well-known/acme-challenge/..%2F..%2Fsecret",
        "/.well-known/acme-challenge/%2e%2e/%2e%2e/secret",
        "/.well-known/acme-challenge/link",
        "/.well-known/acme-challenge/",
        "/.well-known/acme-challenge/a.b",
    ):
        status, _, body = _raw_get(port, target)
        assert status == 404, target
        assert b"not for you" not in body


def test_http_port_redirects_everything_else_to_https(plain) -> None:
    """Everything else on plain HTTP: 301 to https://<Host without its port><path>, with the HTTPS port
    when it is not 443; a malformed Host falls back to the mail host name."""
    running, _ = plain
    port, https = running.ports["http"], running.ports["web"]
    status, headers, _ = _raw_get(port, "/admin/aliases?q=x", host=f"example.test:{port}")
    assert status == 301
    assert headers["location"] == f"https://example.test:{https}/admin/aliases?q=x"
    _, headers, _ = _raw_get(port, "/", host="[::1]:80")
    assert headers["location"] == f"https://[::1]:{https}/"
    _, headers, _ = _raw_get(port, "/x", host="evil.test/path@x")
    assert headers["location"] == f"https://mail.example.test:{https}/x"


def test_https_location_omits_port_443() -> None:
    from sealmail.web.plainhttp import https_location

    assert https_location("example.test:80", "mail.example.test", 443, "/a?b") == "https://example.test/a?b"


# ---- DNS records for discovery ---------------------------------------------------------------------
def test_discovery_records_follow_the_port_settings(settings) -> None:
    """RFC 6186 SRV (submissions, submission, imaps, pop3s; "." for the plaintext IMAP/POP3 that is
    not offered, RFC 6186 §4 / RFC 2782), RFC 5804 SRV for ManageSieve and RFC 6764 SRV + TXT path=
    for CalDAV/CardDAV, all with the ports of the settings."""
    from sealmail.services.dnsrecords import records_for

    custom = settings.model_copy(
        update={
            "domain": "example.test",
            "submission_tls_port": 1465,
            "submission_port": 1587,
            "imaps_port": 1993,
            "pop3s_port": 1995,
            "managesieve_port": 14190,
            "caldav_port": 5000,
            "carddav_port": 6000,
        }
    )
    records = {(r.type, r.name): r.value for r in records_for(custom, "example.test")}
    target = "mail.example.test."
    assert records[("SRV", "_submissions._tcp.example.test")] == f"0 1 1465 {target}"
    assert records[("SRV", "_submission._tcp.example.test")] == f"10 1 1587 {target}"
    assert records[("SRV", "_imaps._tcp.example.test")] == f"0 1 1993 {target}"
    assert records[("SRV", "_pop3s._tcp.example.test")] == f"10 1 1995 {target}"
    assert records[("SRV", "_imap._tcp.example.test")] == "0 0 0 ."
    assert records[("SRV", "_pop3._tcp.example.test")] == "0 0 0 ."
    assert records[("SRV", "_sieve._tcp.example.test")] == f"0 1 14190 {target}"  # RFC 5804 §1.8
    assert records[("SRV", "_caldavs._tcp.example.test")] == f"0 1 5000 {target}"
    assert records[("SRV", "_carddavs._tcp.example.test")] == f"0 1 6000 {target}"
    assert records[("TXT", "_caldavs._tcp.example.test")] == "path=/"
    assert records[("TXT", "_carddavs._tcp.example.test")] == "path=/"
    assert records[("CNAME", "autoconfig.example.test")] == target
    assert records[("CNAME", "autodiscover.example.test")] == target
