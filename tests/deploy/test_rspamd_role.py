"""The rspamd role's choices, evaluated by Ansible itself with the role's defaults and vars, and its
rendered configuration checked by the real ``rspamadm`` (Debian's rspamd, installed here) over a
copy of Debian's ``/etc/rspamd``: which hosts run rspamd and what they export to the sealmail and
firewall roles (``inventory/single``, ``inventory/ha``); that the configuration passes
``rspamadm configtest`` and leaves no password-free door (Debian's ``q1`` and loopback
``secure_ip`` replaced), no worker off loopback, no DKIM signing and no rspamd.com fuzzy storage;
and that the role's check refuses a broken file before it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploykit import ROOT, need_ansible, run_playbook

STOCK = Path("/etc/rspamd")

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamadm")]  # ansible-playbook, rspamadm (seconds each)

_RENDER = """
- hosts: all
  connection: local
  gather_facts: false
  vars_files: [{root}/roles/rspamd/defaults/main.yml, {root}/roles/rspamd/vars/main.yml]
  vars:
    ansible_facts: {{default_ipv4: {{address: 192.0.2.1}}}}
    __templates: {root}/roles/rspamd/templates
    __etc: "{out}/{{{{ inventory_hostname }}}}/etc"
  tasks:
    - ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        content: "{{{{ {{'here': __rspamd_here | bool, 'url': rspamd__sealmail__dependent_url,
          'controller': rspamd__sealmail__dependent_controller_url,
          'firewall': rspamd__firewall__dependent_rules}} | to_json }}}}"
        mode: "0600"
      delegate_to: localhost
    - ansible.builtin.file:
        path: "{{{{ __etc }}}}/{{{{ item }}}}"
        state: directory
        mode: "0700"
      loop: [local.d, override.d]
      delegate_to: localhost
    - ansible.builtin.template:
        src: "{{{{ __templates }}}}/etc/rspamd/{{{{ item.src }}}}.j2"
        dest: "{{{{ __etc }}}}/{{{{ item.dest | default(item.src) }}}}"
        mode: "0600"
      loop: "{{{{ __rspamd_files + [{{'src': 'local.d/redis.conf'}}] }}}}"
      delegate_to: localhost
    - ansible.builtin.template:
        src: "{{{{ __templates }}}}/usr/local/sbin/sealmail-rspamd-configtest.j2"
        dest: "{out}/{{{{ inventory_hostname }}}}/configtest"
        mode: "0700"
      delegate_to: localhost
"""


def _render(inventory: str, tmp_path: Path) -> dict[str, dict]:  # about a minute under load
    """Each host's exports, and its rendered files in <tmp>/<host>/etc (Sealmail's local.d/ and
    override.d/ only) with the role's configuration check in <tmp>/<host>/configtest."""
    need_ansible()
    out = tmp_path / "out"
    out.mkdir()
    hashed = subprocess.run(
        ["rspamadm", "lua", "-b", "-e", "print(require('rspamd_cryptobox').pbkdf(io.read('l')))"],
        input="the-generated-password",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    playbook = tmp_path / "render.yml"
    playbook.write_text(_RENDER.format(root=ROOT, out=out))
    # Extra vars: above the role's vars files. The role's check (configtest) is rendered for the
    # copy _confdir() makes, never for this machine's /etc/rspamd.
    extra = {
        "__rspamd_password_hash": hashed,
        "rspamd__redis_password": "redis-secret",
        "__rspamd_confdir": str(tmp_path / "etc-rspamd"),
    }
    run_playbook(playbook, ROOT / inventory, extra)
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def _confdir(rendered: Path, tmp_path: Path) -> Path:
    """Debian's /etc/rspamd with the role's files in place, as on a converged host."""
    conf = tmp_path / "etc-rspamd"
    shutil.copytree(STOCK, conf, symlinks=True)
    shutil.copytree(rendered, conf, dirs_exist_ok=True)
    return conf


def _rspamadm(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rspamadm", f"--var=LOCAL_CONFDIR={conf}", *args, "-c", str(conf / "rspamd.conf")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[dict, Path, Path]:
    """inventory/single rendered once: the host's exports, and Debian's configuration with its files."""
    tmp_path = tmp_path_factory.mktemp("single")
    (found,) = _render("inventory/single", tmp_path).values()
    host = tmp_path / "out/mail.example.com"
    return found, host, _confdir(host / "etc", tmp_path)


def test_single_host_runs_rspamd_on_loopback_and_opens_nothing(single) -> None:
    found, _, _ = single
    assert found == {
        "here": True,
        "url": "http://127.0.0.1:11333",
        "controller": "http://127.0.0.1:11334",
        "firewall": [],
    }


def test_several_hosts_run_rspamd_where_the_mx_runs_and_learn_through_its_controller(tmp_path) -> None:
    """inventory/ha: the mx/smtp hosts run rspamd (controller also on their private address, open
    to the other hosts only); the others scan nothing and learn through the first MX host's."""
    found = _render("inventory/ha", tmp_path)
    assert {name for name, host in found.items() if host["here"]} == {"mx1.example.com", "mx2.example.com"}
    assert found["mx1.example.com"]["url"] == "http://127.0.0.1:11333"
    assert found["imap1.example.com"]["url"] == ""
    assert found["imap1.example.com"]["controller"] == "http://10.0.0.11:11334"
    (rule,) = found["mx2.example.com"]["firewall"]
    assert rule["port"] == 11334
    assert sorted(rule["sources"]) == ["10.0.0.11", "10.0.0.21", "10.0.0.22", "10.0.0.31", "10.0.0.41"]
    assert found["imap1.example.com"]["firewall"] == []
    controller = (tmp_path / "out/mx1.example.com/etc/override.d/worker-controller.inc").read_text()
    assert 'bind_socket = ["127.0.0.1:11334", "10.0.0.11:11334"];' in controller


def test_the_rendered_configuration_passes_rspamadm_and_has_no_password_free_door(single) -> None:
    _, _, conf = single
    check = _rspamadm(conf, "configtest")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "syntax OK" in check.stdout
    workers = _rspamadm(conf, "configdump", "worker").stdout
    assert '"q1"' not in workers
    assert re.search(r'\bpassword = "\$2\$', workers), workers
    assert re.search(r'enable_password = "\$2\$', workers), workers
    assert re.search(r"secure_ip \[\s*\]", workers), workers
    # normal worker, controller and fuzzy storage on 127.0.0.1 ("localhost:11332" is the milter
    # proxy's, which is off)
    for bind in ("127.0.0.1:11333", "127.0.0.1:11334", "127.0.0.1:11335"):
        assert f'"{bind}"' in workers, workers
    # The proxy's section ends at the first closing brace in column 0; its keys come in any order and
    # its nested sections (upstream {...}) have braces of their own.
    proxy = workers.split("rspamd_proxy {", 1)[1].split("\n}", 1)[0]
    assert "\n    enabled = false;" in proxy, workers
    fuzzy = _rspamadm(conf, "configdump", "fuzzy_check").stdout
    assert "rspamd.com" not in fuzzy, fuzzy
    assert "127.0.0.1:11335" in fuzzy, fuzzy
    assert "enabled = false;" in _rspamadm(conf, "configdump", "dkim_signing").stdout
    logging = _rspamadm(conf, "configdump", "logging").stdout
    assert 'level = "warning";' in logging, logging
    assert "smtp_from" not in logging, logging
    assert "rcpts" not in logging, logging


def test_the_roles_check_refuses_a_broken_file_and_passes_a_good_one(single, tmp_path) -> None:
    """validate: runs it before a file replaces the installed one, so rspamd never reloads a broken
    configuration."""
    _, host, conf = single
    broken = tmp_path / "broken.inc"
    broken.write_text('bind_socket = "127.0.0.1:11333";\ncount = "many";\n')
    refused = subprocess.run(
        [str(host / "configtest"), "override.d/worker-normal.inc", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "syntax BAD" in refused.stdout + refused.stderr
    good = conf / "override.d/worker-normal.inc"
    passed = subprocess.run(
        [str(host / "configtest"), "override.d/worker-normal.inc", str(good)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
