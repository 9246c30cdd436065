"""The daily alert (``sealmail doctor --alert``, issue 23) through the real console script, against
the doctor's world (``tests/doctorkit.py``: dnsmasq zones, the real MX and IMAP listeners), with the
jobs component delivering what it queues to the tests' SMTP sink (``tests/smtpsink.py``) as the
mail host of b.test, where the operator reads admin@b.test.

Each run's stderr is a file named by ``JOURNAL_STREAM`` (as systemd names the journal's stream), so
every line carries its syslog priority the way journald reads it (sd-daemon(3)): ``<3>`` is err.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from sealmail.jobs.component import JobsComponent
from sealmail.services.dnsrecords import DnsRecord

from doctorkit import DOMAIN, HOST, IPV4, DoctorWorld, Zone
from smtpsink import Sink
from support import async_wait_for, free_port

pytestmark = [pytest.mark.tool("dnsmasq"), pytest.mark.slow]
ADMIN = "admin@b.test"
OTHER_KEY = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = DoctorWorld(tmp_path_factory.mktemp("alert"))
    yield built
    built.close()


@pytest.fixture
def fresh(world):
    """No memory of an earlier run, no queued mail."""
    data = world.settings.data_dir
    for leftover in [data / "doctor-alert.json", *data.glob("queue.sqlite*")]:
        leftover.unlink(missing_ok=True)
    return world


@pytest.fixture
async def sink():
    receiver = Sink(free_port())
    await receiver.start()
    yield receiver
    await receiver.stop()


def _zone(world: DoctorWorld, *, ptr: bool = True, dkim: bool = True) -> Zone:
    """The good host, with b.test's MX at the sink; without the PTR of 203.0.113.5 and with another
    ed25519 key published, when asked."""
    zone = world.good_zone()
    zone.records.append(DnsRecord("b.test", "MX", "mx.b.test.", "the operator's own mail", priority=10))
    zone.bare["mx.b.test"] = ["127.0.0.1"]
    if not ptr:
        zone.drop("A", HOST)
        zone.bare[HOST] = [IPV4]
    if not dkim:
        zone.set("TXT", f"ed1._domainkey.{DOMAIN}", OTHER_KEY)
    return zone


@pytest.fixture
def alert(fresh, sealmail_bin, clean_env, tmp_path):
    """``run(zone)``: ``sealmail doctor --alert --json`` with the DNS of ``zone``; its exit code,
    its stderr lines (priority-prefixed) and its JSON. ``run.dns`` is the last zone's server."""
    servers = []

    def run(zone: Zone, **env: str):
        dns = fresh.serve(zone, tmp_path / f"dns{len(servers)}")
        servers.append(dns)
        run.dns = dns
        errors = tmp_path / f"stderr{len(servers)}"
        with errors.open("wb") as stream:
            found = os.fstat(stream.fileno())
            full = {
                **clean_env,
                **fresh.env(dns, **{"SEALMAIL_DOCTOR_ALERT_TO": ADMIN, **env}),
                "JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}",
            }
            done = subprocess.run(
                [sealmail_bin, "doctor", "--alert", "--json"],
                env=full,
                stdout=subprocess.PIPE,
                stderr=stream,
                timeout=180,
                check=False,
            )
        body = json.loads(done.stdout) if done.stdout.strip() else None
        return done.returncode, errors.read_text().splitlines(), body

    yield run
    for dns in servers:
        dns.stop()


async def _deliver(world: DoctorWorld, dns, sink: Sink, expected: int) -> None:
    """Run the jobs component until the sink holds ``expected`` messages, then a moment more."""
    settings = world.settings.model_copy(
        update={"dns_servers": [dns.address], "smtp_relay_port": sink.port, "smtp_timeout": 5.0}
    )
    jobs = JobsComponent(settings)
    await jobs.start()
    try:
        if expected:
            await async_wait_for(lambda: len(sink.received) >= expected, timeout=30, what="the alert arrived")
        else:
            import asyncio

            await asyncio.sleep(2.0)  # the queue is empty: nothing may arrive
    finally:
        await jobs.stop()
    assert len(sink.received) == expected


def _errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("<3>")]


def _mail(sink: Sink, n: int) -> email.message.EmailMessage:
    return email.message_from_bytes(sink.received[n].data, policy=email.policy.default)


async def test_the_alert_remembers_logs_each_new_problem_at_err_and_mails_each_new_set_once(alert, fresh, sink) -> None:
    # 1: a missing PTR, never seen before: one err line, one mail.
    code, lines, body = alert(_zone(fresh, ptr=False))
    assert code == 0, lines
    assert body["new"] == [f"ptr.missing:{IPV4}"]
    (err,) = _errors(lines)
    assert f"new problem ptr.missing:{IPV4}: {IPV4}: {IPV4} has no PTR record (reverse DNS)" in err
    assert f"Fix: Ask your VPS provider to set the PTR (reverse DNS) of {IPV4} to {HOST}" in err
    assert any(line.startswith("<6>") and f"1 new problem(s) mailed to {ADMIN}" in line for line in lines)
    state = fresh.settings.data_dir / "doctor-alert.json"
    assert json.loads(state.read_text())["problems"] == [f"ptr.missing:{IPV4}"]
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    await _deliver(fresh, alert.dns, sink, 1)
    first = _mail(sink, 0)
    assert sink.received[0].rcpt_tos == [ADMIN]
    assert sink.received[0].mail_from == f"postmaster@{DOMAIN}"
    assert first["Subject"] == f"1 new deliverability problem on {HOST}"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["DKIM-Signature"] is not None  # signed as the domain's mail
    text = first.get_content()
    assert f"- {IPV4}: {IPV4} has no PTR record (reverse DNS)" in text
    assert f"  Fix: Ask your VPS provider to set the PTR (reverse DNS) of {IPV4} to {HOST}" in text

    # 2: the same problem again: nothing new is logged at err, nothing is mailed.
    code, lines, body = alert(_zone(fresh, ptr=False))
    assert code == 0
    assert body["new"] == []
    assert body["known"] == [f"ptr.missing:{IPV4}"]
    assert _errors(lines) == []
    assert any(line.startswith("<6>") and "1 problem(s) reported before are still there" in line for line in lines)
    await _deliver(fresh, alert.dns, sink, 1)

    # 3: a DKIM key that is not the signing key joins it: that one is new, logged and mailed once.
    code, lines, body = alert(_zone(fresh, ptr=False, dkim=False))
    assert code == 0
    assert body["new"] == [f"dkim.wrong:{DOMAIN}:ed1"]
    assert len(_errors(lines)) == 1
    await _deliver(fresh, alert.dns, sink, 2)
    second = _mail(sink, 1)
    assert second["Subject"] == f"1 new deliverability problem on {HOST}"
    text = second.get_content()
    assert f"the DKIM ed25519 key published at ed1._domainkey.{DOMAIN} is not the key this host signs with" in text
    assert "Still there from earlier runs:" in text
    assert f"({'ptr.missing:' + IPV4})" in text

    # 4: all fixed: gone, nothing new, nothing mailed; the memory is empty.
    code, lines, body = alert(_zone(fresh))
    assert code == 0
    assert sorted(body["resolved"]) == [f"dkim.wrong:{DOMAIN}:ed1", f"ptr.missing:{IPV4}"]
    assert _errors(lines) == []
    assert json.loads((fresh.settings.data_dir / "doctor-alert.json").read_text())["problems"] == []
    await _deliver(fresh, alert.dns, sink, 2)


async def test_a_report_the_queue_refuses_fails_the_run_and_is_tried_again(alert, fresh, sink) -> None:
    """The memory is written only once the report is queued: a refused report is not lost."""
    blocked = fresh.settings.data_dir / "queue.sqlite"
    blocked.mkdir()  # the queue cannot open its file
    try:
        code, lines, body = alert(_zone(fresh, ptr=False))
    finally:
        blocked.rmdir()
    assert code == 1
    assert body is None
    assert any(line.startswith("<3>") and "the daily check could not finish" in line for line in lines)
    assert not (fresh.settings.data_dir / "doctor-alert.json").exists()
    code, lines, body = alert(_zone(fresh, ptr=False))
    assert code == 0
    assert body["new"] == [f"ptr.missing:{IPV4}"]
    await _deliver(fresh, alert.dns, sink, 1)


async def test_no_one_to_tell_is_said_and_the_problems_are_still_logged(alert, fresh) -> None:
    code, lines, body = alert(_zone(fresh, ptr=False), SEALMAIL_DOCTOR_ALERT_TO="none")
    assert code == 0
    assert body["mailed_to"] is None
    assert len(_errors(lines)) == 1
    assert any(line.startswith("<4>") and "mailed to nobody" in line for line in lines)
    assert not list(fresh.settings.data_dir.glob("queue.sqlite"))


def test_the_timer_the_deployment_installs_comes_from_the_app(sealmail_bin, clean_env, tmp_path) -> None:
    env = {**clean_env, "SEALMAIL_DATA_DIR": str(tmp_path)}
    listed = subprocess.run([sealmail_bin, "timers", "--json"], env=env, capture_output=True, text=True, check=True)
    (timer,) = json.loads(listed.stdout)
    assert timer["name"] == "doctor-alert"
    assert timer["command"] == ["doctor", "--alert"]
    assert timer["on_calendar"] == "daily"
    assert timer["randomized_delay_seconds"] > 0
    usage = subprocess.run(
        [sealmail_bin, *timer["command"], "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert usage.returncode == 0, usage.stderr
    assert Path(sealmail_bin).exists()
