"""What the deployment learns from the app about ManageSieve: its port (``sealmail components --json``,
which the firewall role opens and Molecule checks) and its SRV record (``sealmail dns-records
--json``, RFC 5804 §1.8, which the dns role publishes). The roles never compute either themselves."""

from __future__ import annotations

import json
import subprocess

import pytest


@pytest.fixture
def cli(sealmail_bin, clean_env, tmp_path):
    env = {**clean_env, "SEALMAIL_DATA_DIR": str(tmp_path / "data"), "SEALMAIL_HOSTNAME": "mail.example.test"}

    def run(*args: str, **extra: str):
        result = subprocess.run(
            [sealmail_bin, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else result.stdout

    return run


def test_components_json_lists_the_managesieve_port_for_the_firewall(cli) -> None:
    (listed,) = [c for c in cli("components", "--json") if c["name"] == "managesieve"]
    assert listed["available"] is True
    assert listed["listeners"] == [
        {"key": "managesieve", "setting": "managesieve_port", "port": 4190, "tls": "starttls", "public": True}
    ]
    (moved,) = [c for c in cli("components", "--json", SEALMAIL_MANAGESIEVE_PORT="14190") if c["name"] == "managesieve"]
    assert moved["listeners"][0]["port"] == 14190


def test_rfc5804_s1_8_dns_records_json_lists_the_sieve_srv_record(cli) -> None:
    cli("domain", "add", "universitéxyz.fr")
    records = cli("dns-records", "--all", "--json")
    (sieve,) = [r for r in records if r["name"] == "_sieve._tcp.xn--universitxyz-jeb.fr"]
    assert (sieve["type"], sieve["value"], sieve["zone"]) == (
        "SRV",
        "0 1 4190 mail.example.test.",
        "xn--universitxyz-jeb.fr",
    )
    moved = cli("dns-records", "universitéxyz.fr", "--json", SEALMAIL_MANAGESIEVE_PORT="14190")
    assert next(r["value"] for r in moved if r["name"].startswith("_sieve._tcp.")) == "0 1 14190 mail.example.test."
