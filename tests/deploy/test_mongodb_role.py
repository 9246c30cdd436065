"""The mongodb role and the app agree: the URL the role exports is one the app's settings take and
its client opens as a replica set with TLS; the sealmail role switches the app to MongoDB only when
it is given that URL; mongod.conf turns on TLS, authorization and the keyfile.

MongoDB cannot be installed here, so the role never converges in a test: these render its export,
its mongod.conf template and the sealmail env template with the real ansible-playbook on this
machine (local connection, two inventory names for two members).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from pymongo.uri_parser import parse_uri

from sealmail.config.mongodb import open_client
from sealmail.settings import load_settings

from support import in_ci

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = ROOT / ".venv-deploy/bin/ansible-playbook"

PLAY = """\
- name: Render what the mongodb role and the sealmail role write
  hosts: mongodb
  gather_facts: true
  tasks:
    - name: The role's export (URL and firewall rule)
      ansible.builtin.import_role:
        name: mongodb
        tasks_from: export.yml
      vars:
        __mongodb_app_password_file: {password_file}
        mongodb__tls_ca_file: {ca_file}
    - name: Save the exports
      ansible.builtin.copy:
        content: "{{{{ {{'url': mongodb__sealmail__dependent_url, 'rules': mongodb__firewall__dependent_rules}} | to_json }}}}"
        dest: "{out}/export-{{{{ inventory_hostname }}}}.json"
        mode: "0600"
    - name: Render mongod.conf
      ansible.builtin.template:
        src: {root}/roles/mongodb/templates/etc/mongod.conf.j2
        dest: "{out}/mongod-{{{{ inventory_hostname }}}}.conf"
        mode: "0600"
      vars:
        __mongodb_tls_pem: /etc/mongodb-sealmail/member.pem
        __mongodb_keyfile: /etc/mongodb-sealmail/keyfile
    - name: Render the env file with and without the URL
      ansible.builtin.template:
        src: {root}/roles/sealmail/templates/etc/sealmail/sealmail.env.j2
        dest: "{out}/env-{{{{ item.name }}}}-{{{{ inventory_hostname }}}}"
        mode: "0600"
      loop:
        - {{name: mongodb, url: "{{{{ mongodb__sealmail__dependent_url }}}}"}}
        - {{name: single, url: ""}}
      vars:
        sealmail__mongodb_url: "{{{{ item.url }}}}"
        sealmail__mongodb_database: sealmail
        sealmail__domain: example.test
        sealmail__email: ""
        sealmail__auth_basic_username: admin
        __sealmail_auth_basic_password: basic-pass
        sealmail__hostname: mail.example.test
        sealmail__data_dir: {out}/data
        sealmail__bind_addresses: [127.0.0.1]
        sealmail__log_level: INFO
        sealmail__mx_processes: 1
        sealmail__dkim_dir: {out}/dkim
        sealmail__acme_webroot: ""
        sealmail__mta_sts_mode: testing
        sealmail__dmarc_policy: quarantine
        sealmail__report_address: ""
        sealmail__public_ipv4: ""
        sealmail__public_ipv6: ""
        sealmail__redis_url: ""
        sealmail__tls_cert_file: ""
        __sealmail_tls_cert_file: ""
        __sealmail_tls_key_file: ""
        __sealmail_store_settings: {{}}
        __sealmail_enabled: [mx, imap]
        sealmail__redis_sentinels: []
        sealmail__redis_sentinel_master: sealmail
        sealmail__redis_sentinel_password: ""
        sealmail__rspamd_url: ""
        sealmail__rspamd_controller_url: ""
        sealmail__rspamd_controller_password: ""
        sealmail__settings: {{}}
"""

INVENTORY = """\
all:
  children:
    mongodb:
      hosts:
        db1.example.test: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
        db2.example.test: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
    other:
      hosts:
        mx1.example.test: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
"""

PASSWORD = "AppPassQuince4711"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    if not ANSIBLE_PLAYBOOK.exists():
        if in_ci():
            pytest.fail("ansible-playbook is missing: run make deploy-venv", pytrace=False)
        pytest.skip("ansible-playbook is missing: run make deploy-venv")
    out = tmp_path_factory.mktemp("mongodb-role")
    (out / "password").write_text(PASSWORD + "\n")
    ca = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates: a real CA bundle
    play = out / "play.yml"
    play.write_text(PLAY.format(password_file=out / "password", ca_file=ca, out=out, root=ROOT))
    (out / "hosts.yml").write_text(INVENTORY)
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(out / "hosts.yml"), str(play)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out


def test_the_exported_url_is_a_replica_set_with_tls_the_app_takes(rendered) -> None:
    """Every member in the URL, the set's name, TLS with the CA file, the app's own user and database."""
    url = json.loads((rendered / "export-db1.example.test.json").read_text())["url"]
    assert json.loads((rendered / "export-db2.example.test.json").read_text())["url"] == url
    settings = load_settings(
        rendered / "env-mongodb-db1.example.test", use_environ=False, mongodb_url=url, config_backend="mongodb"
    )
    assert settings.mongodb_url is not None
    client = open_client(settings.mongodb_url.get_secret_value(), connect=False)
    try:
        assert client.options.replica_set_name == "rs0"
        assert set(client.topology_description.server_descriptions()) == {
            ("db1.example.test", 27017),
            ("db2.example.test", 27017),
        }
        assert client.options.pool_options._ssl_context is not None
        parsed = parse_uri(url)
        assert (parsed["username"], parsed["password"], parsed["database"]) == ("sealmail", PASSWORD, "sealmail")
        assert parsed["options"]["authSource"] == "sealmail"
    finally:
        client.close()


def test_port_27017_is_opened_to_the_other_hosts_on_members_only(rendered) -> None:
    [rule] = json.loads((rendered / "export-db1.example.test.json").read_text())["rules"]
    assert rule["port"] == 27017
    assert rule["proto"] == "tcp"
    assert rule["sources"]  # never "everyone"


def test_the_env_file_switches_to_mongodb_only_with_the_url(rendered) -> None:
    with_url = (rendered / "env-mongodb-db1.example.test").read_text()
    assert "SEALMAIL_CONFIG_BACKEND='mongodb'" in with_url
    assert "SEALMAIL_MONGODB_URL='mongodb://sealmail:" in with_url
    single = (rendered / "env-single-db1.example.test").read_text()
    assert "MONGODB" not in single
    assert "CONFIG_BACKEND" not in single
    settings = load_settings(rendered / "env-mongodb-db1.example.test", use_environ=False)
    assert settings.config_backend == "mongodb"


def test_mongod_requires_tls_authorization_and_the_keyfile(rendered) -> None:
    conf = yaml.safe_load((rendered / "mongod-db1.example.test.conf").read_text())
    assert conf["net"]["tls"]["mode"] == "requireTLS"
    assert conf["security"] == {
        "authorization": "enabled",
        "keyFile": "/etc/mongodb-sealmail/keyfile",
        "clusterAuthMode": "keyFile",
    }
    assert conf["replication"]["replSetName"] == "rs0"
    addresses = [ipaddress.ip_address(a) for a in conf["net"]["bindIp"].split(",")]
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert not any(a.is_unspecified for a in addresses)  # loopback and the private address only
