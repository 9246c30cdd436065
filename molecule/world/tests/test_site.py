"""What a user of a host converged with site.yml relies on (tls__mode: selfsigned), checked on the
world's Sealmail host (its main domain is an IDN: files and records use its A-label).

Component tests are parametrised from ``sealmail components --json`` on the host: they check
every component the installed version has, and grow as components land.
"""

from __future__ import annotations

import json
import re
import secrets
import tomllib

import pytest

from component_tests import component_ports
from conftest import PROJECT_DIR, SEALMAIL_BIN, container_in, host_vars

UNICODE_DOMAIN = "universitéxyz.fr"
DOMAIN = "xn--universitxyz-jeb.fr"  # its A-label
HOST_IP = "10.89.88.10"
HOST_IP6 = "fd5e:88::10"
CLIENT_IP = "10.89.88.30"
ENV_FILE = "/etc/sealmail/sealmail.env"
TLS_DIR = "/etc/ssl/sealmail"
DATA_DIR = "/var/lib/sealmail"

# Ports the firewall must open with every component enabled and the STARTTLS ports off: mail,
# the web admin (443, and 80 for the redirect and ACME), the API (4000), ManageSieve (4190, STARTTLS
# required before any login), CalDAV and CardDAV (5000/6000, where the published SRV records send clients).
OPEN_PORTS = {22, 25, 80, 443, 465, 587, 993, 995, 4000, 4190, 5000, 6000}
# Ports that must be dropped: STARTTLS IMAP/POP3 (off by default), Redis, the private store port,
# rspamd's normal worker and controller.
DROPPED_PORTS = {110, 143, 3456, 6379, 11333, 11334}


def env_values(host) -> dict[str, str]:
    text = host.file(ENV_FILE).content_string
    return dict(re.findall(r"^([A-Z_]+)='([^']*)'$", text, re.MULTILINE))


# -- the app, its user and its settings ----------------------------------------------------------


def test_sealmail_user_is_an_unprivileged_system_user(sealmail_host):
    user = sealmail_host.user("sealmail")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == DATA_DIR
    data = sealmail_host.file(DATA_DIR)
    assert data.is_directory and data.user == "sealmail" and data.mode == 0o750


def test_env_file_is_root_only_and_valid(sealmail_host):
    env = sealmail_host.file(ENV_FILE)
    assert env.user == "root" and env.group == "root"
    assert env.mode == 0o600
    check = sealmail_host.run(f"{SEALMAIL_BIN} check-config --env-file {ENV_FILE}")
    assert check.rc == 0, check.stderr
    values = env_values(sealmail_host)
    assert values["DOMAIN"] in {DOMAIN, UNICODE_DOMAIN}
    assert values["SEALMAIL_TLS_CERT_FILE"] == f"{TLS_DIR}/fullchain.pem"
    assert values["SEALMAIL_REDIS_URL"].startswith("redis://:")
    assert len(values["AUTH_BASIC_PASSWORD"]) >= 20


def test_env_file_cannot_be_read_by_the_service_user(sealmail_host):
    result = sealmail_host.run(f"setpriv --reuid=sealmail --regid=sealmail --init-groups cat {ENV_FILE}")
    assert result.rc != 0


def test_venv_has_the_version_of_this_repository(sealmail_host):
    version = tomllib.loads((PROJECT_DIR / "app" / "pyproject.toml").read_text())["project"]["version"]
    out = sealmail_host.check_output(f"{SEALMAIL_BIN} --version")
    assert version in out


def test_admin_command_runs_as_the_service_user(sealmail_host):
    domains = json.loads(sealmail_host.check_output("/usr/local/bin/sealmail domain list --json"))
    assert DOMAIN in [d["ascii"] for d in domains]
    store = sealmail_host.file(f"{DATA_DIR}/config.sqlite")
    assert store.exists and store.user == "sealmail"


# -- Redis ------------------------------------------------------------------------------------------


def test_redis_refuses_unauthenticated_clients(sealmail_host):
    out = sealmail_host.run("redis-cli -h 127.0.0.1 ping")
    assert "NOAUTH" in out.stdout + out.stderr


def test_redis_accepts_the_generated_password(sealmail_host):
    out = sealmail_host.check_output("REDISCLI_AUTH=$(cat /etc/redis/sealmail-password) redis-cli -h 127.0.0.1 ping")
    assert out.strip() == "PONG"
    assert sealmail_host.file("/etc/redis/sealmail-password").mode == 0o600


def test_redis_listens_on_loopback_only(sealmail_host):
    assert sealmail_host.socket("tcp://127.0.0.1:6379").is_listening
    assert not sealmail_host.socket("tcp://0.0.0.0:6379").is_listening
    assert not sealmail_host.socket(f"tcp://{HOST_IP}:6379").is_listening


# -- rspamd -----------------------------------------------------------------------------------------

RSPAMD_PASSWORD_FILE = "/etc/rspamd/sealmail-controller-password"

# The controller's answer to one request, as its HTTP status (urllib raises for 403).
CONTROLLER = r"""
import sys, urllib.error, urllib.request
method, path, password = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
request = urllib.request.Request("http://127.0.0.1:11334" + path, method=method,
                                 data=b"" if method == "POST" else None)
if password is not None:
    request.add_header("Password", password)
try:
    with urllib.request.urlopen(request, timeout=10) as reply:
        print(reply.status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


WAIT_FOR_RSPAMD = """import time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen('http://127.0.0.1:11333/ping', timeout=2)
        break
    except OSError:
        time.sleep(0.5)
"""


def controller_status(host, method: str, path: str, password: str | None = None) -> int:
    script = CONTROLLER.replace("'", "'\"'\"'")
    args = f"{method} {path}" + (f" '{password}'" if password is not None else "")
    return int(host.check_output(f"python3 -c '{script}' {args}").strip())


def test_rspamd_runs_with_a_configuration_that_passes_its_check(sealmail_host):
    service = sealmail_host.service("rspamd")
    assert service.is_enabled and service.is_running
    check = sealmail_host.run("rspamadm configtest")
    assert check.rc == 0 and "syntax OK" in check.stdout, check.stdout + check.stderr


def test_rspamd_listens_on_loopback_only(sealmail_host):
    """Normal worker (11333), controller (11334) and the local fuzzy storage (11335/udp) on
    127.0.0.1; no rspamd socket on any other address (the milter proxy is off)."""
    sockets = [line.split() for line in sealmail_host.check_output("ss -Hlntup").splitlines() if '"rspamd"' in line]
    local = {(fields[0], fields[4]) for fields in sockets}
    assert {("tcp", "127.0.0.1:11333"), ("tcp", "127.0.0.1:11334"), ("udp", "127.0.0.1:11335")} <= local, local
    assert all(address.startswith(("127.0.0.1:", "[::1]:")) for _, address in local), local


def test_the_app_is_given_rspamds_workers_and_the_generated_password(sealmail_host):
    values = env_values(sealmail_host)
    assert values["SEALMAIL_RSPAMD_URL"] == "http://127.0.0.1:11333"
    assert values["SEALMAIL_RSPAMD_CONTROLLER_URL"] == "http://127.0.0.1:11334"
    password = sealmail_host.file(RSPAMD_PASSWORD_FILE)
    assert (password.user, password.group, password.mode) == ("root", "root", 0o600)
    assert values["SEALMAIL_RSPAMD_CONTROLLER_PASSWORD"] == password.content_string.strip()
    assert len(values["SEALMAIL_RSPAMD_CONTROLLER_PASSWORD"]) >= 24


@pytest.mark.parametrize(("method", "path"), [("GET", "/stat"), ("POST", "/learnspam")], ids=["read", "write"])
def test_rspamd_controller_refuses_debians_default_password_and_no_password(sealmail_host, method, path):
    """Debian's stock controller password "q1" is gone for reading and for writing (learning), and
    loopback is no password-free secure_ip any more. rspamd 3.4 refuses with 401 Unauthorized."""
    assert controller_status(sealmail_host, method, path, "q1") == 401
    assert controller_status(sealmail_host, method, path) == 401


def test_rspamd_controller_accepts_the_generated_password(sealmail_host):
    password = env_values(sealmail_host)["SEALMAIL_RSPAMD_CONTROLLER_PASSWORD"]
    assert controller_status(sealmail_host, "GET", "/stat", password) == 200


def test_rspamd_keeps_no_message_history_on_disk_and_logs_no_line_per_message(sealmail_host):
    """Its roll history (recent messages' ids, addresses, symbols) would be saved when it stops: a
    restart leaves no file. Its log goes to journald at warning, where no line per message is written."""
    sealmail_host.check_output("systemctl restart rspamd")
    assert not sealmail_host.file("/var/lib/rspamd/rspamd.history").exists
    dump = sealmail_host.check_output("rspamadm configdump logging")
    assert 'type = "console";' in dump and 'level = "warning";' in dump, dump
    # The next tests scan through it: on when the normal worker answers again.
    sealmail_host.check_output(f'python3 -c "{WAIT_FOR_RSPAMD}"')


# -- firewall ----------------------------------------------------------------------------------------


def test_ruleset_drops_inbound_by_default(sealmail_host):
    ruleset = sealmail_host.check_output("nft list table inet sealmail")
    assert re.search(r"type filter hook input priority filter; policy drop;", ruleset)
    opened = {int(p) for p in re.findall(r"tcp dport (\d+) accept", ruleset)}
    assert opened == OPEN_PORTS


PROBE_SCRIPT = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
def probe(port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "open"
    except ConnectionRefusedError:
        return "refused"   # the firewall let it through; nothing listens there
    except (TimeoutError, socket.timeout):
        return "dropped"
    finally:
        s.close()
with ThreadPoolExecutor(len(ports)) as pool:
    print(json.dumps(dict(zip(ports, pool.map(probe, ports)))))
"""


@pytest.fixture(scope="module", params=[HOST_IP, HOST_IP6], ids=["ipv4", "ipv6"])
def probed(request, sealmail_host, probe):
    """Connect from the client container to every port of interest, once per address family."""
    # A listener on a port the firewall must drop: "dropped" then really means the firewall.
    sealmail_host.run("systemd-run --unit=probe-listener python3 -m http.server 3456 --bind ::")
    try:
        ports = sorted(OPEN_PORTS | DROPPED_PORTS)
        script = PROBE_SCRIPT.replace("'", "'\"'\"'")
        out = probe.check_output(f"python3 -c '{script}' {request.param} {' '.join(map(str, ports))}")
    finally:
        sealmail_host.run("systemctl stop probe-listener")
    return {int(k): v for k, v in json.loads(out).items()}


@pytest.mark.parametrize("port", sorted(OPEN_PORTS))
def test_firewall_lets_mail_ports_through(probed, port):
    assert probed[port] in {"open", "refused"}


@pytest.mark.parametrize("port", sorted(DROPPED_PORTS))
def test_firewall_drops_other_ports(probed, port):
    assert probed[port] == "dropped"


def test_ssh_is_reachable_from_outside(probed):
    assert probed[22] == "open"


# -- TLS ----------------------------------------------------------------------------------------------


def test_certificate_and_key_are_readable_by_the_services_only(sealmail_host):
    cert = sealmail_host.file(f"{TLS_DIR}/fullchain.pem")
    key = sealmail_host.file(f"{TLS_DIR}/privkey.pem")
    assert cert.exists and cert.group == "sealmail"
    assert key.user == "root" and key.group == "sealmail" and key.mode == 0o640
    assert sealmail_host.file(f"{TLS_DIR}/ca.key").mode == 0o600


def test_certificate_names_and_chain(sealmail_host):
    text = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -ext subjectAltName")
    names = json.loads(sealmail_host.check_output("sealmail host-names --json"))
    for name in (DOMAIN, f"mail.{DOMAIN}", f"imap.{DOMAIN}", f"smtp.{DOMAIN}", f"mta-sts.{DOMAIN}"):
        assert name in names
    for name in names:  # every name the app says leads here (autoconfig., autodiscover., …)
        assert f"DNS:{name}" in text
    verify = sealmail_host.run(f"openssl verify -CAfile {TLS_DIR}/ca.pem {TLS_DIR}/fullchain.pem")
    assert verify.rc == 0, verify.stdout + verify.stderr


def test_key_matches_certificate(sealmail_host):
    from_cert = sealmail_host.check_output(f"openssl x509 -in {TLS_DIR}/fullchain.pem -noout -pubkey")
    from_key = sealmail_host.check_output(f"openssl pkey -in {TLS_DIR}/privkey.pem -pubout")
    assert from_cert == from_key


def test_deploy_hook_restarts_every_tls_component(sealmail_host):
    hook = sealmail_host.file("/usr/local/sbin/sealmail-tls-deploy")
    assert hook.mode == 0o755
    for component in ("mx", "smtp", "imap", "pop3", "web"):
        assert f"sealmail-{component}.service" in hook.content_string
    assert sealmail_host.run("/usr/local/sbin/sealmail-tls-deploy --restart-only").rc == 0


def test_the_mx_runs_one_session_process_per_vcpu(sealmail_host):
    """SEALMAIL_MX_PROCESSES is the host's vCPUs; with more than one, they all run under the unit."""
    vcpus = int(sealmail_host.check_output("grep -c ^processor /proc/cpuinfo"))
    assert env_values(sealmail_host)["SEALMAIL_MX_PROCESSES"] == str(vcpus)
    expected = vcpus if vcpus > 1 else 0
    for _ in range(30):  # a session process that died is replaced within seconds (mxprocs)
        main_pid = sealmail_host.check_output("systemctl show -p MainPID --value sealmail-mx.service")
        sessions = sealmail_host.run(f"pgrep -P {main_pid} -f sealmail.smtp.mxchild").stdout.split()
        if len(sessions) == expected:
            break
        sealmail_host.run("sleep 1")
    journal = sealmail_host.run("journalctl -u sealmail-mx --no-pager -n 40 -o cat").stdout
    assert len(sessions) == expected, f"{sessions}\n{journal}"
    # None of them died since the unit started (each death loses the sessions it served).
    since = sealmail_host.check_output("systemctl show -p ActiveEnterTimestamp --value sealmail-mx.service")
    deaths = sealmail_host.run(f"journalctl -u sealmail-mx --no-pager -o cat --since '{since}' --grep 'exited \\(status'")
    assert not deaths.stdout.strip(), deaths.stdout


# -- DKIM and DNS -------------------------------------------------------------------------------------


def app_records(host) -> list[dict]:
    return json.loads(host.check_output("sealmail dns-records --all --json"))


@pytest.mark.parametrize(("kind", "selector", "marker"), [("rsa", "rsa1", "2048 bit"), ("ed25519", "ed1", "ED25519")])
def test_dkim_key_is_the_one_the_app_signs_with_and_publishes(sealmail_host, kind, selector, marker):
    """The app makes the keys where the role told it (SEALMAIL_DKIM_DIR); the record carries that key."""
    assert env_values(sealmail_host)["SEALMAIL_DKIM_DIR"] == "/etc/sealmail/dkim"
    path = f"/etc/sealmail/dkim/{DOMAIN}/{kind}.key"
    key = sealmail_host.file(path)
    assert key.user == "sealmail" and key.group == "sealmail" and key.mode == 0o640
    assert marker in sealmail_host.check_output(f"openssl pkey -in {path} -noout -text | head -1")
    tail = "| tail -c 32" if kind == "ed25519" else ""
    public = sealmail_host.check_output(f"openssl pkey -in {path} -pubout -outform DER {tail} | base64 -w0")
    expected = f"v=DKIM1; k={kind}; p={public}"
    published = {(r["name"], r["type"]): r["value"] for r in app_records(sealmail_host)}
    assert published[(f"{selector}._domainkey.{DOMAIN}", "TXT")] == expected
    records = sealmail_host.file("/etc/sealmail/dns-records.txt").content_string
    assert re.search(rf"^TXT\s+{selector}\._domainkey\.{re.escape(DOMAIN)}\s+\"{re.escape(expected)}\"$",
                     records, re.MULTILINE)


def test_the_dns_role_publishes_exactly_what_the_app_computes(sealmail_host):
    """One source of truth: the role's JSON is the app's `dns-records --all --json`, record for record."""
    saved = json.loads(sealmail_host.file("/etc/sealmail/dns-records.json").content_string)
    assert saved == app_records(sealmail_host)
    fetched = sealmail_host.run(
        f"curl -sf --cacert {TLS_DIR}/ca.pem --resolve mta-sts.{DOMAIN}:443:127.0.0.1 "
        f"https://mta-sts.{DOMAIN}/.well-known/mta-sts.txt"
    )
    assert fetched.rc == 0, fetched.stderr
    policy = fetched.stdout  # as served, final line break included (check_output strips it)
    # The role's MTA-STS choice reached the app, and the published id is the policy's.
    assert "mode: testing" in policy
    import hashlib

    policy_id = next(r["value"] for r in saved if r["name"] == f"_mta-sts.{DOMAIN}")
    assert policy_id == f"v=STSv1; id={hashlib.sha256(policy.encode()).hexdigest()[:20]}"


def test_dns_records_file_lists_what_the_domain_needs(sealmail_host):
    records = sealmail_host.file("/etc/sealmail/dns-records.txt").content_string
    expected = [
        rf"MX\s+{DOMAIN}\s+10 mail\.{DOMAIN}",
        rf"A\s+mail\.{DOMAIN}\s+{HOST_IP}",
        rf'TXT\s+{DOMAIN}\s+"v=spf1 mx -all"',
        rf'TXT\s+_dmarc\.{DOMAIN}\s+"v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}"',
        rf'TXT\s+_mta-sts\.{DOMAIN}\s+"v=STSv1; id=',
        rf'TXT\s+_smtp\._tls\.{DOMAIN}\s+"v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"',
        rf"SRV\s+_imaps\._tcp\.{DOMAIN}\s+0 1 993 mail\.{DOMAIN}",
        rf"SRV\s+_submissions\._tcp\.{DOMAIN}\s+0 1 465 mail\.{DOMAIN}",
        rf"SRV\s+_sieve\._tcp\.{DOMAIN}\s+0 1 4190 mail\.{DOMAIN}",
        r"PTR: ask your hosting provider",
    ]
    for pattern in expected:
        assert re.search(pattern, records), pattern


# -- base system ----------------------------------------------------------------------------------------


def test_sshd_is_hardened(sealmail_host):
    effective = sealmail_host.check_output(f"sshd -T -C user=root,host=client,addr={CLIENT_IP}")
    assert "passwordauthentication no" in effective
    assert "permitrootlogin without-password" in effective
    assert "x11forwarding no" in effective
    assert sealmail_host.service("ssh").is_running


def test_unattended_upgrades_are_on(sealmail_host):
    assert sealmail_host.package("unattended-upgrades").is_installed
    dump = sealmail_host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump


# Component units and ports: molecule/component_tests.py.
from component_tests import *  # noqa: E402,F403


# -- end to end: a message in over SMTP, back out over IMAP (or POP3) with the alias password ------


READ_BACK = r"""
import imaplib, poplib, ssl, sys
protocol, address, password, subject, port = sys.argv[1:6]
context = ssl.create_default_context(cafile="/etc/ssl/sealmail/ca.pem")
if protocol == "imap":
    with imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=context) as imap:
        imap.login(address, password)
        imap.select("INBOX")
        status, found = imap.search(None, "SUBJECT", '"' + subject + '"')
        print(len(found[0].split()))
else:
    pop = poplib.POP3_SSL("127.0.0.1", int(port), context=context)
    pop.user(address)
    pop.pass_(password)
    count = 0
    for number in range(1, len(pop.list()[1]) + 1):
        lines = pop.retr(number)[1]
        count += any(line.decode(errors="replace") == "Subject: " + subject for line in lines)
    pop.quit()
    print(count)
"""


@pytest.mark.e2e
def test_mail_sent_to_the_mx_can_be_read_back_with_the_alias_password(sealmail_host):
    # The sender's domain publishes no SPF or DMARC: one of the host's own domains would fail DMARC
    # from 127.0.0.1 (the resolver serves their records) and land in Junk.
    available = {c["name"] for c in json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} components --json"))
                 if c["available"]}
    # mx, imap and pop3 are all in this version: a host without them fails here, never skips.
    assert "mx" in available, f"end-to-end mail needs the mx component; available: {sorted(available)}"
    assert available & {"imap", "pop3"}, f"end-to-end mail needs imap or pop3; available: {sorted(available)}"
    protocol, port_key = ("imap", "imaps") if "imap" in available else ("pop3", "pop3s")
    address = f"e2e-{secrets.token_hex(4)}@{DOMAIN}"
    created = json.loads(sealmail_host.check_output(f"/usr/local/bin/sealmail alias add {address} --password --json"))
    subject = f"sealmail e2e {secrets.token_hex(4)}"
    mx_port = component_ports(sealmail_host, "mx")["mx"]
    read_port = component_ports(sealmail_host, protocol)[port_key]
    sent = sealmail_host.run(
        f"swaks --server 127.0.0.1 --port {mx_port} --tls "
        f"--to {address} --from sender@client.world.test --header 'Subject: {subject}' --body 'hello from molecule'")
    assert sent.rc == 0, sent.stdout + sent.stderr
    script = READ_BACK.replace("'", "'\"'\"'")
    count = sealmail_host.check_output(
        f"python3 -c '{script}' {protocol} {address} '{created['password']}' '{subject}' {read_port}")
    assert count.strip() == "1"


def test_scenario_host_vars_are_what_the_tests_assume():
    assert host_vars(container_in("sealmail"))["tls__mode"] == "selfsigned"


# -- backups -------------------------------------------------------------------------------------


def test_backup_settings_are_root_only(sealmail_host):
    env = sealmail_host.file("/etc/sealmail/backup.env")
    assert env.user == "root"
    assert env.mode == 0o600
    assert "SEALMAIL_BACKUP_S3_SECRET_KEY=not-a-real-secret" in env.content_string


def test_backup_timer_is_enabled_daily_and_persistent(sealmail_host):
    timer = sealmail_host.service("sealmail-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    text = sealmail_host.file("/etc/systemd/system/sealmail-backup.timer").content_string
    assert "OnCalendar=*-*-* 03:15:00" in text
    assert "Persistent=true" in text


def test_a_failed_backup_is_loud(sealmail_host):
    """Nothing listens at the endpoint: the unit fails with the reason, and one err line is logged."""
    with sealmail_host.sudo():
        run = sealmail_host.run("systemctl start sealmail-backup.service")
        assert run.rc != 0
        reason = sealmail_host.run("journalctl -u sealmail-backup.service --no-pager -o cat")
        assert "backup failed" in reason.stdout
        assert "cannot reach the S3 endpoint" in reason.stdout
        for _ in range(20):
            err = sealmail_host.run("journalctl -t sealmail-backup -p err --no-pager -o cat")
            if "FAILED" in err.stdout:
                break
            sealmail_host.run("sleep 0.5")
        assert "the Sealmail backup FAILED" in err.stdout


# -- the daily deliverability check (sealmail doctor --alert) -------------------------------------


def test_the_apps_timers_are_installed_enabled_and_on_its_schedule(sealmail_host):
    """The role asks the app for its scheduled runs (``sealmail timers --json``) and installs each."""
    timers = json.loads(sealmail_host.check_output(f"{SEALMAIL_BIN} timers --json"))
    assert "doctor-alert" in [t["name"] for t in timers]
    for wanted in timers:
        timer = sealmail_host.service(f"sealmail-{wanted['name']}.timer")
        assert timer.is_enabled
        assert timer.is_running
        text = sealmail_host.file(f"/etc/systemd/system/sealmail-{wanted['name']}.timer").content_string
        assert f"OnCalendar={wanted['on_calendar']}" in text
        assert f"RandomizedDelaySec={wanted['randomized_delay_seconds']}" in text
        service = sealmail_host.file(f"/etc/systemd/system/sealmail-{wanted['name']}.service").content_string
        assert f"ExecStart=/opt/sealmail/current/bin/sealmail {' '.join(wanted['command'])}" in service
        assert "User=sealmail" in service


def test_the_daily_check_runs_once_successfully_and_remembers(sealmail_host):
    """Started by hand as the timer starts it: the oneshot unit ends with result success, leaves its
    memory (problem ids, owner-only) in the data directory, and a second run logs no new problem at
    priority err (whatever the first one found on this host)."""
    unit = "sealmail-doctor-alert.service"
    with sealmail_host.sudo():
        run = sealmail_host.run(f"systemctl start {unit}")  # a oneshot: returns when the run ended
        journal = sealmail_host.run(f"journalctl -u {unit} --no-pager -o cat -n 60").stdout
        assert run.rc == 0, run.stderr + journal
        assert sealmail_host.check_output(f"systemctl show -p Result --value {unit}") == "success", journal
        assert sealmail_host.check_output(f"systemctl show -p ExecMainStatus --value {unit}") == "0", journal
        assert "new problem" in journal or "no new problem" in journal, journal
        state = sealmail_host.file(f"{DATA_DIR}/doctor-alert.json")
        assert state.exists
        assert state.user == "sealmail"
        assert state.mode == 0o600
        assert "problems" in json.loads(state.content_string)
        since = sealmail_host.check_output("date '+%Y-%m-%d %H:%M:%S'")
        sealmail_host.run("sleep 1")
        again = sealmail_host.run(f"systemctl start {unit}")
        assert again.rc == 0, again.stderr
        errors = sealmail_host.run(f"journalctl -u {unit} -p err --since '{since}' --no-pager -o cat").stdout
        assert "new problem" not in errors, errors
