"""What the roles derive from a multi-server inventory (``inventory/ha``) and from a single host,
evaluated by Ansible itself with the sealmail role's defaults and vars: which components a host
runs, which MX records are published (RFC 5321 §5.1: one per MX host, rising preference values,
so senders fall back to the next MX while one is drained or down), and which private ports open
to whom (the other hosts only)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploykit import PLAYBOOK_BIN, ROOT, need_ansible, run_playbook

pytestmark = pytest.mark.slow  # runs ansible-playbook (about a minute in all)


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
    # The first store host's app answered (tasks/store_tls.yml): its store listens here.
    __sealmail_store_port: 3457
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
          'mx': __sealmail_published_records | selectattr('type', 'eq', 'MX') | list,
          'store': __sealmail_store_settings, 'tls': __sealmail_tls_cert_file,
          'domains_on': __sealmail_domain_host if __sealmail_config_shared | bool else inventory_hostname}} | to_json }}}}"
      delegate_to: localhost
"""


# What playbooks/site.yml passes to the role (extra vars: above the role's files, as there).
_AS_SITE_YML = {
    "sealmail__tls_cert_file": "/etc/ssl/sealmail/fullchain.pem",
    "sealmail__tls_key_file": "/etc/ssl/sealmail/privkey.pem",
}


def _derive(inventory: str, tmp_path: Path, extra: dict | None = None) -> dict[str, dict]:
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "check.yml"
    playbook.write_text(_CHECK.format(root=ROOT, out=out))
    run_playbook(playbook, ROOT / inventory, {**_AS_SITE_YML, **(extra or {})})
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_ha_inventory_places_components_publishes_one_mx_per_host_rfc5321_5_1_and_opens_private_ports_to_peers(
    tmp_path,
) -> None:
    found = _derive("inventory/ha", tmp_path)
    assert found["mx1.example.com"]["components"] == ["mx", "smtp"]
    assert found["imap1.example.com"]["components"] == ["imap", "pop3", "managesieve", "dav"]
    assert found["store1.example.com"]["components"] == ["store", "jobs"]
    for host in found.values():
        assert [(r["value"], r["priority"]) for r in host["mx"]] == [("mx1.example.com.", 10), ("mx2.example.com.", 20)]
    (rule,) = found["store1.example.com"]["private"]
    assert rule["port"] == 3456
    assert sorted(rule["sources"]) == ["10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.22", "10.0.0.31"]
    assert found["mx1.example.com"]["private"] == []  # it runs no private listener
    # The store channel: front-ends reach the first store host's private address with a client
    # certificate; the store host serves with its own, both from the deployment CA.
    assert found["imap2.example.com"]["store"] == {
        "store_url": "wss://10.0.0.41:3457",  # the port the store host's app gave, not a default
        "store_ca_file": "/etc/sealmail/store/ca.pem",
        "store_client_cert_file": "/etc/sealmail/store/cert.pem",
        "store_client_key_file": "/etc/sealmail/store/key.pem",
        "config_backend": "store",  # no MongoDB: the store host's config store, over the same channel
    }
    assert found["imap2.example.com"]["tls"] == "/etc/ssl/sealmail/fullchain.pem"
    assert found["store1.example.com"]["store"] == {
        "store_ca_file": "/etc/sealmail/store/ca.pem",
        "store_host": "store1.example.com",
    }
    assert found["store1.example.com"]["tls"] == "/etc/sealmail/store/cert.pem"
    # the store host keeps its embedded SQLite config store (it serves it): no config_backend here
    # One shared config store: the domains are added (and their DKIM keys made) on the store host
    # only, and copied from there (tasks/domains.yml).
    assert {host["domains_on"] for host in found.values()} == {"store1.example.com"}


def test_with_a_mongodb_url_every_host_keeps_mongodb(tmp_path) -> None:
    found = _derive("inventory/ha", tmp_path, {"sealmail__mongodb_url": "mongodb://db.example.com/?replicaSet=rs0"})
    assert "config_backend" not in found["imap2.example.com"]["store"]
    assert found["imap2.example.com"]["store"]["store_url"] == "wss://10.0.0.41:3457"
    assert "config_backend" not in found["store1.example.com"]["store"]
    assert {host["domains_on"] for host in found.values()} == {"store1.example.com"}  # MongoDB is shared too


def test_several_store_hosts_give_front_ends_every_data_hosts_url(tmp_path) -> None:
    """Issue 19, several data hosts: the front-ends get store_urls (each store host's private address
    under its name, its store_host); the first store host serves the config store; a further store
    host reads it over the channel with its own certificate, and records homes under its own name."""
    text = (ROOT / "inventory/ha/hosts.yml").read_text()
    text = text.replace(
        "        # store2.example.com:\n        #   sealmail__private_address: 10.0.0.42\n",
        "        store2.example.com:\n          sealmail__private_address: 10.0.0.42\n",
    )
    text = text.replace("        # store2.example.com:\n", "        store2.example.com:\n")
    assert text.count("store2.example.com:") == 2
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(text)
    found = _derive(str(inventory), tmp_path)
    assert found["store2.example.com"]["components"] == ["store", "jobs"]
    assert found["imap2.example.com"]["store"]["store_urls"] == (
        "store1.example.com=wss://10.0.0.41:3457,store2.example.com=wss://10.0.0.42:3457"
    )
    assert found["imap2.example.com"]["store"]["store_url"] == "wss://10.0.0.41:3457"
    assert found["store1.example.com"]["store"] == {
        "store_ca_file": "/etc/sealmail/store/ca.pem",
        "store_host": "store1.example.com",
    }
    assert found["store2.example.com"]["store"] == {
        "store_url": "wss://10.0.0.41:3457",
        "store_ca_file": "/etc/sealmail/store/ca.pem",
        "store_host": "store2.example.com",
        "store_client_cert_file": "/etc/sealmail/store/cert.pem",
        "store_client_key_file": "/etc/sealmail/store/key.pem",
        "config_backend": "store",
    }
    assert found["store2.example.com"]["tls"] == "/etc/sealmail/store/cert.pem"


def test_single_host_is_unchanged(tmp_path) -> None:
    (host,) = _derive("inventory/single", tmp_path).values()
    # every component but the store: a single host keeps its mailboxes in-process (no store unit)
    assert host["components"] == ["mx", "smtp", "imap", "pop3", "managesieve", "dav", "web", "api", "jobs"]
    assert host["mx"] == [
        {"zone": "example.com", "name": "example.com", "type": "MX", "value": "mail.example.com.", "priority": 10}
    ]
    assert host["private"] == []  # no other host: the store's port stays closed
    assert host["store"] == {}  # in-process store, as before
    assert host["tls"] == "/etc/ssl/sealmail/fullchain.pem"
    assert host["domains_on"] == "mail.example.com"  # itself, as before


_STORE_TLS = """
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {root}/roles/sealmail
        tasks_from: store_tls.yml
        public: true
    - ansible.builtin.copy:
        dest: "{{{{ sealmail__config_dir }}}}/store-url"
        content: "{{{{ __sealmail_store_url }}}}"
        mode: "0600"
"""


def _store_inventory(tmp_path: Path) -> Path:
    hosts = {
        "store1": {"groups": ["store"], "address": "127.0.0.1"},
        "fe1": {"groups": ["mx", "imap"], "address": "127.0.0.2"},
    }
    # store_tls.yml asks the store host's installed app for its port: this checkout's venv stands in.
    install = tmp_path / "install"
    (install / "share").mkdir(parents=True)
    (install / "share" / "empty.env").write_text("")
    (install / "venv").symlink_to(Path(sys.prefix))
    lines = ["all:", "  children:", "    sealmail:", "      children: {store: {}, mx: {}, imap: {}}"]
    for group in ("store", "mx", "imap"):
        lines += [f"    {group}:", "      hosts:"]
        for name, host in hosts.items():
            if group in host["groups"]:
                lines += [
                    f"        {name}:",
                    "          ansible_connection: local",
                    f"          sealmail__install_dir: {install}",
                    f"          ansible_python_interpreter: {PLAYBOOK_BIN.parent / 'python'}",
                    f"          sealmail__config_dir: {tmp_path / name}",
                    "          sealmail__group: root",
                    f"          sealmail__private_address: {host['address']}",
                    # The data host's own choice of port, which the front-ends learn from its app.
                    "          sealmail__settings: {store_port: 3999}",
                ]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def test_store_channel_certificates_from_one_deployment_ca_make_a_mutual_tls_handshake(tmp_path) -> None:
    """The role's store_tls.yml on two hosts (local connections, their own directories): the data
    host's server certificate and the front-end's client certificate come from one CA that stays
    on the data host; the store's own TLS setup accepts the front-end's and the front-end's
    verifies the store at its private address; a second run changes nothing."""
    import asyncio
    import ssl

    from sealmail.settings import Settings
    from sealmail.store.remote import client_tls
    from sealmail.store.server import server_tls

    need_ansible()
    inventory = _store_inventory(tmp_path)
    playbook = tmp_path / "store_tls.yml"
    playbook.write_text(_STORE_TLS.format(root=ROOT))
    run_playbook(playbook, inventory)
    assert "changed=0" in run_playbook(playbook, inventory).split("PLAY RECAP")[1]
    store, front = tmp_path / "store1" / "store", tmp_path / "fe1" / "store"
    assert (tmp_path / "store1" / "store-ca" / "ca.key").exists()
    assert not (tmp_path / "fe1" / "store-ca").exists()  # the CA key stays on the data host
    assert (store / "ca.pem").read_bytes() == (front / "ca.pem").read_bytes()
    assert (tmp_path / "fe1" / "store-url").read_text() == "wss://127.0.0.1:3999"

    settings = Settings(
        data_dir=tmp_path / "data",
        tls_cert_file=store / "cert.pem",
        tls_key_file=store / "key.pem",
        store_ca_file=store / "ca.pem",
    )
    server_context = server_tls(settings)
    client_context = client_tls(front / "ca.pem", front / "cert.pem", front / "key.pem")
    stranger = ssl.create_default_context(cafile=str(front / "ca.pem"))  # no client certificate

    async def handshake(context: ssl.SSLContext) -> str:
        peers: list[str] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            cert = writer.get_extra_info("peercert")
            peers.append(dict(x[0] for x in cert["subject"])["commonName"] if cert else "")
            writer.write(b"ok\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            line = await reader.readline()
            writer.close()
            assert line == b"ok\n"
            return peers[0]
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(handshake(client_context)) == "fe1"
    with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
        asyncio.run(handshake(stranger))


_UPGRADE = """
- hosts: sealmail  # where playbooks/auto-upgrades.yml applies the role
  connection: local
  gather_facts: false
  vars_files: [{root}/roles/upgrade/defaults/main.yml, {root}/roles/upgrade/vars/main.yml]
  vars:
    ansible_managed: test
  tasks:
    - ansible.builtin.template:
        src: {root}/roles/upgrade/templates/etc/systemd/system/sealmail-upgrade.timer.j2
        dest: "{out}/{{{{ inventory_hostname }}}}.timer"
        mode: "0644"
      delegate_to: localhost
    - ansible.builtin.template:
        src: {root}/roles/upgrade/templates/usr/local/sbin/sealmail-auto-upgrade.j2
        dest: "{out}/{{{{ inventory_hostname }}}}.sh"
        mode: "0755"
      delegate_to: localhost
"""


def _render_upgrade(inventory: str, tmp_path: Path) -> dict[str, tuple[str, str]]:
    need_ansible()
    out = tmp_path / "out"
    out.mkdir(parents=True)
    playbook = tmp_path / "upgrade.yml"
    playbook.write_text(_UPGRADE.format(root=ROOT, out=out))
    run_playbook(playbook, ROOT / inventory)
    return {p.stem: (p.read_text(), (out / f"{p.stem}.sh").read_text()) for p in out.glob("*.timer")}


def test_automatic_upgrades_follow_inventory_order_one_host_at_a_time(tmp_path) -> None:
    """Issue 19: "automatic upgrades follow the same order across hosts" as playbooks/upgrade.yml.
    Each host's timer fires upgrade__host_spacing minutes after the previous host's (inventory
    order, no random delay to mix it), and its script takes the deployment's upgrade turn and
    drains before it stops anything, re-admits after the start, and gives the turn back on exit."""
    rendered = _render_upgrade("inventory/ha", tmp_path)
    times = {name.split(".")[0]: re.search(r"OnCalendar=(.*)", timer).group(1) for name, (timer, _) in rendered.items()}
    minutes = [4 * 60 + 30 + 20 * i for i in range(len(times))]  # one host every 20 minutes, none at once
    assert sorted(times.values()) == [f"*-*-* {m // 60:02d}:{m % 60:02d}:00" for m in minutes]
    assert times["mx1"] == "*-*-* 04:30:00"  # the group's first host first
    assert times["mx2"] == "*-*-* 04:50:00"
    for timer, script in rendered.values():
        assert "RandomizedDelaySec=0\n" in timer
        assert "SHARED=yes" in script
        turn, drain = script.index("upgrade-turn take"), script.index("drain on --wait")
        stop, start = script.index('systemctl stop "${UNITS[@]}"\nsnapshot'), script.index('switch_to "$new"')
        admit = script.index("drain off", start)
        assert turn < drain < stop < start < admit, "turn, drain, stop, switch, re-admit: in that order"
        assert "upgrade-turn give" in script[script.index("trap", turn) :]
        checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr

    ((timer, script),) = _render_upgrade("inventory/single", tmp_path / "single").values()
    assert "OnCalendar=*-*-* 04:30:00" in timer
    assert "RandomizedDelaySec=30min" in timer
    assert "SHARED=no" in script
