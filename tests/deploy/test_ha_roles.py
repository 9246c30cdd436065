"""What the roles derive from a multi-server inventory (``inventory/ha``) and from a single host,
evaluated by Ansible itself with the sealmail role's defaults and vars: which components a host
runs, which MX records are published (RFC 5321 §5.1: one per MX host, rising preference values,
so senders fall back to the next MX while one is drained or down), and which private ports open
to whom (the other hosts only)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = ROOT / ".venv-deploy/bin/ansible-playbook"

_CHECK = """
- hosts: all
  connection: local
  gather_facts: false
  vars_files: [{root}/roles/sealmail/defaults/main.yml, {root}/roles/sealmail/vars/main.yml]
  vars:
    role_path: {root}/roles/sealmail
    ansible_facts: {{default_ipv4: {{address: 192.0.2.1}}}}
    sealmail__domain: example.com
    sealmail__units: "{{{{ sealmail__components }}}}"
    __sealmail_dns_records:
      - {{zone: example.com, name: example.com, type: MX, value: mail.example.com., priority: 10}}
      - {{zone: example.com, name: example.com, type: TXT, value: v=spf1 mx -all}}
    __sealmail_component_info:
      - {{name: store, listeners: [{{key: store, port: 3456, public: false}}]}}
      - {{name: mx, listeners: [{{key: mx, port: 25, public: true}}]}}
  tasks:
    - ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        content: "{{{{ {{'components': sealmail__components, 'private': __sealmail_private_rules,
          'mx': __sealmail_published_records | selectattr('type', 'eq', 'MX') | list}} | to_json }}}}"
      delegate_to: localhost
"""


def _derive(inventory: str, tmp_path: Path) -> dict[str, dict]:
    if not PLAYBOOK_BIN.exists():
        pytest.skip("the deployment venv is missing (make deploy-venv)")
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "check.yml"
    playbook.write_text(_CHECK.format(root=ROOT, out=out))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": f"{PLAYBOOK_BIN.parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        [str(PLAYBOOK_BIN), "-i", str(ROOT / inventory), str(playbook)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_ha_inventory_places_components_publishes_one_mx_per_host_rfc5321_5_1_and_opens_private_ports_to_peers(
    tmp_path,
) -> None:
    found = _derive("inventory/ha", tmp_path)
    assert found["mx1.example.com"]["components"] == ["mx", "smtp"]
    assert found["imap1.example.com"]["components"] == ["imap", "pop3", "dav"]
    assert found["store1.example.com"]["components"] == ["store", "jobs"]
    for host in found.values():
        assert [(r["value"], r["priority"]) for r in host["mx"]] == [("mx1.example.com.", 10), ("mx2.example.com.", 20)]
    (rule,) = found["store1.example.com"]["private"]
    assert rule["port"] == 3456
    assert sorted(rule["sources"]) == ["10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.22", "10.0.0.31"]
    assert found["mx1.example.com"]["private"] == []  # it runs no private listener


def test_single_host_is_unchanged(tmp_path) -> None:
    (host,) = _derive("inventory/single", tmp_path).values()
    assert host["components"] == ["mx", "smtp", "imap", "pop3", "dav", "web", "api", "store", "jobs"]
    assert host["mx"] == [
        {"zone": "example.com", "name": "example.com", "type": "MX", "value": "mail.example.com.", "priority": 10}
    ]
    assert host["private"] == []  # no other host: the store's port stays closed
