"""The sealmail role's scheduled runs come from the app: the timer and service units rendered by the
role's own tasks (``roles/sealmail/tasks/timers.yml`` templates) from the real ``sealmail timers
--json``, checked by systemd's own parser (``systemd-analyze verify``). Molecule's world scenario
then checks the installed timer on a host (``molecule/world/tests/test_site.py``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deploykit import ROOT, run_playbook

pytestmark = pytest.mark.tool("systemd-analyze")

PLAY = """\
- name: Render the units of the app's scheduled runs as the sealmail role does
  hosts: local
  gather_facts: false
  vars:
    sealmail__timers: {timers}
    sealmail__user: root
    sealmail__group: root
    sealmail__env_file: {out}/sealmail.env
    sealmail__data_dir: {out}/data
    __sealmail_empty_env: {out}/empty.env
    __sealmail_src: {root}
    __sealmail_bin: {bin}
  tasks:
    - name: Render each service
      ansible.builtin.template:
        src: {root}/roles/sealmail/templates/etc/systemd/system/sealmail-timer.service.j2
        dest: "{out}/sealmail-{{{{ item.name }}}}.service"
        mode: "0644"
      loop: "{{{{ sealmail__timers }}}}"
    - name: Render each timer
      ansible.builtin.template:
        src: {root}/roles/sealmail/templates/etc/systemd/system/sealmail-timer.timer.j2
        dest: "{out}/sealmail-{{{{ item.name }}}}.timer"
        mode: "0644"
      loop: "{{{{ sealmail__timers }}}}"
"""


def test_the_role_renders_valid_units_for_the_apps_timers(tmp_path: Path, sealmail_bin, clean_env) -> None:
    listed = subprocess.run(
        [sealmail_bin, "timers", "--json"],
        env={**clean_env, "SEALMAIL_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        check=True,
    )
    timers = json.loads(listed.stdout)
    assert [t["name"] for t in timers] == ["doctor-alert"]
    out = tmp_path / "units"
    out.mkdir()
    (out / "sealmail.env").write_text("SEALMAIL_DOMAIN='example.test'\n")
    (out / "empty.env").write_text("")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(timers=json.dumps(timers), out=out, root=ROOT, bin=sealmail_bin))
    inventory = tmp_path / "inventory"
    inventory.write_text("local ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
    run_playbook(playbook, inventory)
    service = (out / "sealmail-doctor-alert.service").read_text()
    timer = (out / "sealmail-doctor-alert.timer").read_text()
    assert f"ExecStart={sealmail_bin} doctor --alert" in service
    assert "Type=oneshot" in service
    assert "OnCalendar=daily" in timer
    assert "RandomizedDelaySec=3600" in timer
    assert "Persistent=true" in timer
    assert "# sealmail-role-timer" in timer.splitlines()  # how the role finds its own timers again
    verified = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(out / "sealmail-doctor-alert.timer"),
            str(out / "sealmail-doctor-alert.service"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
