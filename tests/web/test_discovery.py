"""Client discovery: a client that knows only an address (and a password) finds every service.

- RFC 6764 §5 well-known redirects on the web port to the CalDAV/CardDAV context path on their own
  ports, followed by a real client (Debian's vdirsyncer);
- Thunderbird autoconfig and Microsoft Autodiscover (POX) with the settings' host and ports;
- the Apple configuration profile of an alias (web admin);
- the plain-HTTP port: ACME HTTP-01 answers (RFC 8555 §8.3) and redirects to HTTPS.
"""

from __future__ import annotations

import plistlib
import shutil
import ssl
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.services.clientconfig import (
    AUTODISCOVER_NS,
    AUTODISCOVER_OUTLOOK_NS,
    AUTODISCOVER_REQUEST_NS,
)

from support import ComponentThread, free_port

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
@pytest.mark.parametrize(("service", "port"), [("caldav", CALDAV_PORT), ("carddav", CARDDAV_PORT)])
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
    dav = ComponentThread("dav", web_settings.model_copy(update={"bind_address": "127.0.0.1"}))
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
    tool = shutil.which("vdirsyncer")
    assert tool is not None, "vdirsyncer is not installed (scripts/system-deps test)"
    done = subprocess.run(
        [tool, "-c", str(config), "discover"], input="y\n", capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'- "{collection}"' in done.stdout  # found on the server
    assert (tmp_path / "local" / collection).is_dir(), done.stdout + done.stderr  # and mirrored locally


def test_dav_ports_keep_their_own_well_known_redirects(web_settings, dav_account, certs) -> None:
    """RFC 6764 §5 on the DAV ports themselves: /.well-known/caldav|carddav lead to the context path."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(certs.ca_cert))) as anonymous:
        for port in (CALDAV_PORT, CARDDAV_PORT):
            for service in ("caldav", "carddav"):
                r = anonymous.request("PROPFIND", f"https://localhost:{port}/.well-known/{service}")
                assert r.status_code == 301
                assert r.headers["location"] == "/"
