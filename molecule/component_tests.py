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
# How each port setting speaks TLS: implicit TLS, or STARTTLS with openssl's protocol name.
IMPLICIT_TLS = {"submission_tls_port", "imaps_port", "pop3s_port", "web_port"}
STARTTLS = {"mx_port": "smtp", "submission_port": "smtp", "imap_port": "imap", "pop3_port": "pop3"}


def component_ports(host, component: str) -> dict[str, int]:
    """The ports the running component reported (its readiness file)."""
    ready = host.file(f"{DATA_DIR}/run/{component}.json")
    assert ready.exists, f"{component} never reported it was listening"
    return json.loads(ready.content_string)["ports"]


def test_every_available_component_has_a_unit(sealmail_host):
    components = json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} components --json"))
    available = [c["name"] for c in components if c["available"]]
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
    component, key, setting = component_port
    port = component_ports(sealmail_host, component)[key]
    assert sealmail_host.socket(f"tcp://0.0.0.0:{port}").is_listening or sealmail_host.socket(
        f"tcp://:::{port}").is_listening
    if port < 1024:
        assert "cap_net_bind_service" in sealmail_host.service(f"sealmail-{component}").systemd_properties[
            "AmbientCapabilities"]
    if setting in IMPLICIT_TLS:
        starttls = ""
    elif setting in STARTTLS:
        starttls = f"-starttls {STARTTLS[setting]}"
    else:
        return
    served = sealmail_host.check_output(
        f"openssl s_client -connect 127.0.0.1:{port} {starttls} -servername {SNI_NAME} </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256")
    ours = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -fingerprint -sha256")
    assert served == ours


