"""The sealmail role's units, with the test double standing in for a component."""

from __future__ import annotations

import json

from component_tests import *  # noqa: F403
from conftest import SEALMAIL_BIN


def test_the_test_double_is_what_the_host_reports(sealmail_host):
    available = [c["name"] for c in json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} components --json"))
                 if c["available"]]
    assert "web" in available


def test_unit_gets_its_settings_and_may_bind_443(sealmail_host):
    unit = sealmail_host.file("/etc/systemd/system/sealmail-web.service").content_string
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit
    assert "EnvironmentFile=/etc/sealmail/sealmail.env" in unit


def test_health_gate_passes(sealmail_host):
    ready = json.loads(sealmail_host.file("/var/lib/sealmail/run/web.json").content_string)
    assert ready["ports"] == {"web": 443}
    assert sealmail_host.socket("tcp://0.0.0.0:443").is_listening


def test_certificate_change_restarts_the_component(sealmail_host):
    before = sealmail_host.service("sealmail-web").systemd_properties["MainPID"]
    assert sealmail_host.run("/usr/local/sbin/sealmail-tls-deploy --restart-only").rc == 0
    after = sealmail_host.service("sealmail-web").systemd_properties["MainPID"]
    assert after != before
    assert sealmail_host.service("sealmail-web").is_running
