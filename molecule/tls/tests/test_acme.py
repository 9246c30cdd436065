"""The tls role's ACME path against a real ACME server (pebble)."""

from __future__ import annotations

import time

import pytest

TLS_DIR = "/etc/ssl/sealmail"
CERTBOT_ENV = "REQUESTS_CA_BUNDLE=/etc/pebble/ca.pem"


def fingerprint(host, path: str) -> str:
    return host.check_output(f"openssl x509 -in {path} -noout -fingerprint -sha256")


def test_certificate_was_issued_by_the_acme_server(sealmail_host):
    issuer = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -issuer")
    assert "Pebble" in issuer
    sans = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -ext subjectAltName")
    assert "DNS:mail.example.test" in sans and "DNS:example.test" in sans


def test_installed_copy_matches_certbots_lineage(sealmail_host):
    assert fingerprint(sealmail_host, f"{TLS_DIR}/fullchain.pem") == fingerprint(
        sealmail_host, "/etc/letsencrypt/live/sealmail/fullchain.pem")
    key = sealmail_host.file(f"{TLS_DIR}/privkey.pem")
    assert key.group == "sealmail" and key.mode == 0o640


def test_first_issue_used_the_webroot_and_left_no_server_behind(sealmail_host):
    renewal = sealmail_host.file("/etc/letsencrypt/renewal/sealmail.conf").content_string
    assert "authenticator = webroot" in renewal
    assert "/var/lib/sealmail/acme" in renewal
    assert not sealmail_host.service("sealmail-acme-http").is_running


def test_renewal_timer_and_deploy_hook_are_in_place(sealmail_host):
    assert sealmail_host.service("certbot.timer").is_enabled
    hook = sealmail_host.file("/etc/letsencrypt/renewal-hooks/deploy/sealmail")
    assert hook.is_symlink and hook.linked_to == "/usr/local/sbin/sealmail-tls-deploy"
    dropin = sealmail_host.file("/etc/systemd/system/certbot.service.d/sealmail.conf").content_string
    assert "REQUESTS_CA_BUNDLE=/etc/pebble/ca.pem" in dropin


@pytest.fixture(scope="module")
def renewed(sealmail_host):
    """Force a renewal the way certbot.timer runs one, and report what changed.

    The web component holds port 80 by then: the renewal's HTTP-01 answer is the webroot it serves.
    """
    sealmail_host.run("systemctl start sealmail-web")
    for _ in range(50):
        if sealmail_host.socket("tcp://0.0.0.0:80").is_listening:
            break
        time.sleep(0.2)
    before = fingerprint(sealmail_host, f"{TLS_DIR}/fullchain.pem")
    pid_before = sealmail_host.service("sealmail-web").systemd_properties["MainPID"]
    result = sealmail_host.run(f"{CERTBOT_ENV} certbot renew --force-renewal --no-random-sleep-on-renew")
    assert result.rc == 0, result.stdout + result.stderr
    return {
        "before": before,
        "after": fingerprint(sealmail_host, f"{TLS_DIR}/fullchain.pem"),
        "pid_before": pid_before,
        "pid_after": sealmail_host.service("sealmail-web").systemd_properties["MainPID"],
        "output": result.stdout + result.stderr,
    }


def test_renewal_installs_the_new_certificate(sealmail_host, renewed):
    assert renewed["after"] != renewed["before"]
    assert renewed["after"] == fingerprint(sealmail_host, "/etc/letsencrypt/live/sealmail/fullchain.pem")


def test_renewal_restarts_the_components_that_serve_tls(sealmail_host, renewed):
    # Nobody keeps serving the old certificate: the running component was restarted...
    assert renewed["pid_after"] != renewed["pid_before"]
    assert sealmail_host.service("sealmail-web").is_running
    # ...while a component this version does not have (no unit) was skipped, not an error.
    assert "restarted sealmail-imap" not in renewed["output"]
