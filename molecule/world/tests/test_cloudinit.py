"""The world's second Sealmail host: a VPS user's first boot, where cloud-init ran the example
user-data (clone, setup.sh, site.yml) and Molecule converged nothing.

Checked on the host (an admin's view): cloud-init finished without errors, the summary is root's,
the components run (the same unit and port checks as the other host), the certificate covers the
domain's A-label names, the DNS table is the app's, and a second site.yml run, the way setup.sh
runs it, changes nothing. What its users and other servers do with it (discovery, mail in over
IPv4 and IPv6, submission judged by the remote's verifiers, the web admin) is in test_world.py.
"""

from __future__ import annotations

import json
import re

import pytest
import testinfra
from conftest import container_in

DOMAIN = "xn--caf-dma.test"  # café.test, as the user typed it in the user-data
TLS_DIR = "/etc/ssl/sealmail"
DEPLOY_DIR = "/opt/sealmail-deploy"  # where the example user-data clones the repository


@pytest.fixture(scope="module")
def sealmail_host():
    """This module's host is the cloud-init one (the component checks below use this fixture)."""
    name = container_in("cloudinit")
    if name is None:
        pytest.fail("the world scenario has no platform in the cloudinit group")
    return testinfra.get_host(f"podman://{name}")


def test_cloud_init_finished_without_errors(sealmail_host):
    status = sealmail_host.run("cloud-init status --long")
    assert "status: done" in status.stdout, status.stdout + status.stderr
    result = json.loads(sealmail_host.file("/run/cloud-init/result.json").content_string)["v1"]
    assert result["errors"] == []
    assert "NoCloud" in result["datasource"]


def test_the_user_data_was_the_example_with_the_test_values(sealmail_host):
    env = sealmail_host.file("/etc/profile.d/env.sh")
    assert env.user == "root"
    assert env.mode == 0o600
    assert 'export DOMAIN="café.test"' in env.content_string
    assert not sealmail_host.file("/root/.cloudflare.ini").exists
    assert sealmail_host.file(f"{DEPLOY_DIR}/setup.sh").exists


def test_summary_is_root_only(sealmail_host):
    summary = sealmail_host.file("/root/sealmail-summary.txt")
    assert summary.exists
    assert summary.user == "root"
    assert summary.mode & 0o077 == 0
    assert f"mail.{DOMAIN}" in summary.content_string or "mail.café.test" in summary.content_string


def test_certificate_covers_the_a_label_names(sealmail_host):
    text = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -ext subjectAltName")
    names = json.loads(sealmail_host.check_output("sealmail host-names --json"))
    assert DOMAIN in names
    assert f"mail.{DOMAIN}" in names
    for name in names:
        assert name.isascii(), name
        assert f"DNS:{name}" in text
    verify = sealmail_host.run(f"openssl verify -CAfile {TLS_DIR}/ca.pem {TLS_DIR}/fullchain.pem")
    assert verify.rc == 0, verify.stdout + verify.stderr


def test_dns_records_file_is_what_the_app_computes(sealmail_host):
    saved = json.loads(sealmail_host.file("/etc/sealmail/dns-records.json").content_string)
    assert saved == json.loads(sealmail_host.check_output("sealmail dns-records --all --json"))
    assert any(r["name"] == DOMAIN and r["type"] == "MX" for r in saved)


# Component units (active, enabled, hardened) and ports: molecule/component_tests.py.
from component_tests import *  # noqa: E402,F403


def test_a_second_site_run_the_way_setup_sh_runs_it_changes_nothing(sealmail_host):
    """setup.sh's run_playbook: its venv, inventory/local, and the inputs from env.sh."""
    result = sealmail_host.run(
        f"bash -c '. /etc/profile.d/env.sh && cd {DEPLOY_DIR} && "
        "PATH=$PWD/.venv-deploy/bin:$PATH ANSIBLE_FORCE_COLOR=0 "
        ".venv-deploy/bin/ansible-playbook site.yml -i inventory/local'"
    )
    assert result.rc == 0, result.stdout[-3000:] + result.stderr[-3000:]
    recap = re.search(r"^localhost\s*:.*$", result.stdout, re.MULTILINE)
    assert recap, result.stdout[-3000:]
    assert re.search(r"\bchanged=0\b", recap.group(0)), (
        "\n".join(line for line in result.stdout.splitlines() if line.startswith("changed:")) + "\n" + recap.group(0)
    )
