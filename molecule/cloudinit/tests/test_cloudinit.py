"""A VPS user's first boot: cloud-init ran the example user-data (clone, setup.sh, site.yml).

Checked on the host afterwards: cloud-init finished without errors, the summary is root's, the
components run, the certificate covers the domain's A-label names, the DNS table is the app's,
mail in over the MX comes back out over IMAPS, and a second site.yml run, the way setup.sh runs
it, changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets

import pytest
from component_tests import component_ports
from conftest import SEALMAIL_BIN

DOMAIN = "xn--universitxyz-jeb.fr"  # universitéxyz.fr, as the user typed it in the user-data
TLS_DIR = "/etc/ssl/sealmail"
DEPLOY_DIR = "/opt/sealmail-deploy"  # where the example user-data clones the repository


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
    assert 'export DOMAIN="universitéxyz.fr"' in env.content_string
    assert not sealmail_host.file("/root/.cloudflare.ini").exists
    assert sealmail_host.file(f"{DEPLOY_DIR}/setup.sh").exists


def test_summary_is_root_only(sealmail_host):
    summary = sealmail_host.file("/root/sealmail-summary.txt")
    assert summary.exists
    assert summary.user == "root"
    assert summary.mode & 0o077 == 0
    assert f"mail.{DOMAIN}" in summary.content_string or "mail.universitéxyz.fr" in summary.content_string


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

# Over loopback, checking the certificate for the mail host's name (it has no IP addresses).
READ_BACK = r"""
import imaplib, socket, ssl, sys
address, password, subject, port, name = sys.argv[1:6]
class Loopback(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
context = ssl.create_default_context(cafile="/etc/ssl/sealmail/ca.pem")
with Loopback(name, int(port), ssl_context=context) as imap:
    imap.login(address, password)
    imap.select("INBOX")
    status, found = imap.search(None, "SUBJECT", '"' + subject + '"')
    print(len(found[0].split()))
"""


@pytest.mark.e2e
def test_mail_sent_to_the_mx_is_read_back_over_imaps_with_the_alias_password(sealmail_host):
    available = {
        c["name"] for c in json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} components --json")) if c["available"]
    }
    if not {"mx", "imap"} <= available:
        pytest.skip("end-to-end mail needs mx and imap, not both in this version yet")
    address = f"e2e-{secrets.token_hex(4)}@{DOMAIN}"
    created = json.loads(sealmail_host.check_output(f"/usr/local/bin/sealmail alias add {address} --password --json"))
    subject = f"sealmail cloud-init e2e {secrets.token_hex(4)}"
    mx_port = component_ports(sealmail_host, "mx")["mx"]
    imaps_port = component_ports(sealmail_host, "imap")["imaps"]
    sent = sealmail_host.run(
        f"swaks --server 127.0.0.1 --port {mx_port} --tls "
        f"--to {address} --from sender@example.net --header 'Subject: {subject}' --body 'hello from cloud-init'"
    )
    assert sent.rc == 0, sent.stdout + sent.stderr
    script = READ_BACK.replace("'", "'\"'\"'")
    count = ""
    for _ in range(20):  # delivery is asynchronous after the MX accepted
        count = sealmail_host.check_output(
            f"python3 -c '{script}' {address} '{created['password']}' '{subject}' {imaps_port} mail.{DOMAIN}"
        )
        if count.strip() == "1":
            break
        sealmail_host.run("sleep 1")
    assert count.strip() == "1"


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
