"""Checks of the component units, shared by the scenarios that converge the sealmail role.

Parametrised (molecule/conftest.py) from ``sealmail components --json`` on the host, so they
check every component the installed version has and grow as components land.
"""

from __future__ import annotations

import json
import re

from conftest import SEALMAIL_BIN

SNI_NAME = "mail.example.test"  # any name: the host has one certificate
DATA_DIR = "/var/lib/sealmail"
TLS_DIR = "/etc/ssl/sealmail"
# The TLS mode of each port comes from ``sealmail components --json`` (implicit, starttls, none);
# for STARTTLS, openssl's protocol name by port key.
STARTTLS = {"mx": "smtp", "submission": "smtp", "imap": "imap", "pop3": "pop3", "managesieve": "sieve"}

# The status and Location of GET / on a plain HTTP port of the host (no single quotes: run in '...').
HTTP_STATUS = (
    "import http.client, sys; c = http.client.HTTPConnection(\"127.0.0.1\", int(sys.argv[1]), timeout=10); "
    "c.request(\"GET\", \"/\"); r = c.getresponse(); print(r.status, r.getheader(\"Location\", \"\"))"
)

# From another container: does a TCP connection to host:port open? (a private port must not)
CONNECT = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("dropped")
"""


def component_ports(host, component: str) -> dict[str, int]:
    """The ports the running component reported (its readiness file)."""
    ready = host.file(f"{DATA_DIR}/run/{component}.json")
    assert ready.exists, f"{component} never reported it was listening"
    return json.loads(ready.content_string)["ports"]


def test_every_component_placed_here_has_a_unit(sealmail_host):
    """One unit for each component the role placed on this host that the version has (``here`` and
    ``available`` in ``sealmail components --json``; a single host: all but the store)."""
    components = json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} components --json"))
    available = [c["name"] for c in components if c["available"] and c["here"]]
    names = {c["name"] for c in components}  # sealmail-backup/-upgrade units are not components
    units = sorted(
        name
        for f in sealmail_host.check_output("ls /etc/systemd/system").split()
        if re.fullmatch(r"sealmail-[a-z0-9]+\.service", f)
        and (name := f.removesuffix(".service").removeprefix("sealmail-")) in names
    )
    assert units == sorted(available)


def test_component_unit_is_active_enabled_and_hardened(sealmail_host, component):
    service = sealmail_host.service(f"sealmail-{component}")
    assert service.is_running
    assert service.is_enabled
    props = service.systemd_properties
    assert props["User"] == "sealmail"
    assert props["ProtectSystem"] == "strict"
    assert props["NoNewPrivileges"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["LimitCORE"] == "0"  # unwrapped keys never reach a core dump
    assert DATA_DIR in props["ReadWritePaths"]
    assert props["ExecStart"].find(f"serve {component}") != -1


def test_component_port_listens_with_our_certificate(sealmail_host, component_port):
    """Every port of every available component listens, and speaks TLS with the host's certificate
    (implicit or STARTTLS, as ``sealmail components --json`` says) — DAV and API included; the one
    plain port (HTTP) answers with a redirect to HTTPS. No port is left unchecked."""
    component, listener = component_port
    key, tls = listener["key"], listener["tls"]
    port = component_ports(sealmail_host, component)[key]
    assert port == listener["port"], (component, key, port, listener)
    assert sealmail_host.socket(f"tcp://0.0.0.0:{port}").is_listening or sealmail_host.socket(
        f"tcp://:::{port}").is_listening
    if port < 1024:
        assert "cap_net_bind_service" in sealmail_host.service(f"sealmail-{component}").systemd_properties[
            "AmbientCapabilities"]
    if tls == "none":
        status = sealmail_host.check_output(f"python3 -c '{HTTP_STATUS}' {port}")
        code, _, location = status.partition(" ")
        assert code in {"301", "302", "307", "308"}, (key, status)
        assert location.startswith("https://"), (key, status)
        return
    if tls == "implicit":
        starttls = ""
    else:
        assert tls == "starttls", f"unknown TLS mode for {component} {key}: {tls}"
        assert key in STARTTLS, f"no STARTTLS check for {component} {key}"
        starttls = f"-starttls {STARTTLS[key]}"
    served = sealmail_host.check_output(
        f"openssl s_client -connect 127.0.0.1:{port} {starttls} -servername {SNI_NAME} </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256")
    ours = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -fingerprint -sha256")
    assert served == ours


def test_private_ports_are_not_reachable_from_outside(sealmail_host, probe, private_port):
    """A private port (the store's, ``"public": false``) serves only the deployment's own hosts: from
    the probe container it does not open. Where its component does not run on this host (a single
    host keeps its mailboxes in-process: no store), the test says so: no unit, nothing listening on
    its port — rather than skipping."""
    component, runs_here, listener = private_port
    port = listener["port"]
    if runs_here:
        assert sealmail_host.service(f"sealmail-{component}").is_running
    else:
        assert not sealmail_host.file(f"/etc/systemd/system/sealmail-{component}.service").exists, (
            f"{component} does not run on this host, yet it has a unit")
        listening = sealmail_host.check_output(f"ss -Htln 'sport = :{port}'")
        assert not listening.strip(), f"{component} does not run here, yet something listens on {port}: {listening}"
    addresses = sealmail_host.check_output("hostname -I").split()
    assert addresses, "the host has no address to probe"
    script = CONNECT.replace("'", "'\"'\"'")
    for address in addresses:
        reached = probe.check_output(f"python3 -c '{script}' {address} {port}").strip()
        assert reached != "open", f"{component} port {port} is reachable from outside at {address}"
