"""The deployed hosts seen from outside: a resolver, a remote MTA and a mail client around them.

Two Sealmail hosts: one converged by Molecule with site.yml (universitéxyz.fr and example.test),
one that set itself up on its first boot with cloud-init and the example user-data (café.test);
what users and other servers do is checked against both.

Everything a user or another server does goes over the network from their own container (never
``podman exec`` on the Sealmail host for that); the admin steps (creating an alias, asking the app
for its DNS records) run on the host, as an admin would.
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import json
import re
import secrets
import subprocess
import sys
import time

import pytest
from conftest import PROJECT_DIR, container_in

UNICODE_DOMAIN = "universitéxyz.fr"
DOMAIN = "xn--universitxyz-jeb.fr"  # its A-label (RFC 5890)
DOMAINS = [UNICODE_DOMAIN, "example.test"]
MAIL_HOST = f"mail.{DOMAIN}"
HOST_V4, HOST_V6 = "10.89.88.10", "fd5e:88::10"
# The cloud-init host (group cloudinit): its domain as the user typed it, and its A-label.
CLOUD_UNICODE_DOMAIN = "café.test"
CLOUD_DOMAIN = "xn--caf-dma.test"
CLOUD_HOST = f"mail.{CLOUD_DOMAIN}"
CLOUD_V4, CLOUD_V6 = "10.89.88.40", "fd5e:88::40"
# Each Sealmail host: its inventory group, domains (as typed), mail host name and addresses.
HOSTS = {
    "sealmail": {"domains": DOMAINS, "domain": DOMAIN, "name": MAIL_HOST, "ipv4": HOST_V4, "ipv6": HOST_V6},
    "cloudinit": {"domains": [CLOUD_UNICODE_DOMAIN], "domain": CLOUD_DOMAIN, "name": CLOUD_HOST,
                  "ipv4": CLOUD_V4, "ipv6": CLOUD_V6},
}
REMOTE_V4, REMOTE_V6 = "10.89.88.20", "fd5e:88::20"
RESOLVER = "10.89.88.2"

REMOTE = "remote.test"
REMI = f"rémi@{UNICODE_DOMAIN}"
MARIE = f"marie@{DOMAIN}"  # an all-ASCII address (no SMTPUTF8 needed to reach it)
PAUL = "paul@example.test"  # an address at the host's second, plain ASCII domain
CLAIRE = f"claire@{CLOUD_DOMAIN}"  # an address at the cloud-init host
ADMIN = "/usr/local/bin/sealmail"


def run(group: str, argv: list[str], *, input: str | None = None, env: dict[str, str] | None = None,
        check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run argv in the scenario's container of that group (podman exec, stdin passed through)."""
    name = container_in(group)
    assert name, f"no platform in group {group}"
    command = ["podman", "exec", "-i"]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    result = subprocess.run([*command, name, *argv], input=input, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{group}: {' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def python(group: str, script: str, *args: str, env: dict[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    return run(group, ["python3", "-c", script, *args], env=env, check=check)


def make_alias(address: str, group: str = "sealmail") -> dict[str, str]:
    """Create the alias on its host (an admin's step): its address, password and mail host."""
    run(group, [ADMIN, "alias", "rm", address], check=False)  # left by an earlier verify run
    created = json.loads(run(group, [ADMIN, "alias", "add", address, "--password", "--json"]).stdout)
    return {"address": address, "password": created["password"], "host": HOSTS[group]["name"]}


@pytest.fixture(scope="module")
def remi() -> dict[str, str]:
    return make_alias(REMI)


@pytest.fixture(scope="module")
def marie() -> dict[str, str]:
    return make_alias(MARIE)


@pytest.fixture(scope="module")
def paul() -> dict[str, str]:
    return make_alias(PAUL)


@pytest.fixture(scope="module")
def claire() -> dict[str, str]:
    return make_alias(CLAIRE, "cloudinit")


# -- DNS: the resolver publishes what the host says, and only that -----------------------------------

RESOLVE = r"""
import json, sys
import dns.resolver, dns.reversename
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [sys.argv[1]]
out = {}
for name, rtype in json.load(sys.stdin):
    query = dns.reversename.from_address(name) if rtype == "PTR" else name
    try:
        answer = resolver.resolve(query, rtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        out[name + " " + rtype] = []
        continue
    values = []
    for r in answer:
        if rtype == "TXT":
            values.append(b"".join(r.strings).decode())
        elif rtype == "MX":
            values.append(f"{r.preference} {r.exchange}")
        else:
            values.append(r.to_text())
    out[name + " " + rtype] = sorted(values)
print(json.dumps(out))
"""


def resolve(queries: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Ask the resolver, from the client, as any program there would."""
    name = container_in("client")
    result = subprocess.run(["podman", "exec", "-i", name, "python3", "-c", RESOLVE, RESOLVER],
                            input=json.dumps(queries), capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def expected_value(record: dict) -> str:
    if record["type"] == "MX":
        return f"{record['priority']} {record['value']}"
    return record["value"]


@pytest.mark.parametrize(("group", "domain"), [(g, d) for g, h in HOSTS.items() for d in h["domains"]])
def test_resolver_publishes_exactly_what_the_app_says(group, domain):
    """One source of truth: every record `sealmail dns-records --json` lists is on the resolver,
    with exactly the values listed (and no others of that name and type)."""
    records = json.loads(run(group, [ADMIN, "dns-records", domain, "--json"]).stdout)
    assert records, "the app lists no records"
    wanted: dict[str, set[str]] = {}
    for record in records:
        wanted.setdefault(f"{record['name']} {record['type']}", set()).add(expected_value(record))
    answers = resolve([key.split(" ") for key in wanted])
    assert {key: sorted(values) for key, values in wanted.items()} == answers


@pytest.mark.parametrize("group", HOSTS)
def test_resolver_serves_the_dns_roles_file_which_matches_the_app(group):
    """/etc/sealmail/dns-records.json (the dns role's output, what the resolver was built from) has
    every record the app computes for every hosted domain."""
    published = json.loads(run(group, ["cat", "/etc/sealmail/dns-records.json"]).stdout)
    keys = {(r["name"], r["type"], expected_value(r)) for r in published}
    for domain in HOSTS[group]["domains"]:
        for record in json.loads(run(group, [ADMIN, "dns-records", domain, "--json"]).stdout):
            assert (record["name"], record["type"], expected_value(record)) in keys, record
    answers = resolve(sorted({(r["name"], r["type"]) for r in published}))
    for record in published:
        assert expected_value(record) in answers[f"{record['name']} {record['type']}"], record


@pytest.mark.parametrize("group", HOSTS)
def test_the_mail_host_has_its_addresses_and_forward_confirmed_reverse_names(group):
    """The A and AAAA records are the app's (public_ipv4/6: set by the inventory on one host, found
    by setup.sh's run from the host's own addresses on the other); the PTRs are the world's."""
    name, v4, v6 = HOSTS[group]["name"], HOSTS[group]["ipv4"], HOSTS[group]["ipv6"]
    answers = resolve([(name, "A"), (name, "AAAA"), (v4, "PTR"), (v6, "PTR")])
    assert answers[f"{name} A"] == [v4]
    assert answers[f"{name} AAAA"] == [v6]
    assert answers[f"{v4} PTR"] == [f"{name}."]
    assert answers[f"{v6} PTR"] == [f"{name}."]


def test_names_outside_the_test_zones_do_not_exist():
    assert resolve([("example.com", "A")])["example.com A"] == []


# -- the client: discovery from the address alone ---------------------------------------------------


def discover(address: str, steps: str) -> dict:
    result = run("client", ["world-discover", address, "--steps", steps], check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("steps", ["autoconfig", "well-known", "srv"])
@pytest.mark.parametrize(("address", "host"), [(REMI, MAIL_HOST), (f"claire@{CLOUD_UNICODE_DOMAIN}", CLOUD_HOST)])
def test_client_discovers_imap_and_smtp_from_the_address(steps, address, host):
    """Thunderbird's lookup: autoconfig.<domain>, then /.well-known/autoconfig on the domain, then
    RFC 6186 SRV records; each one alone must find implicit-TLS IMAP and submission (RFC 8314)."""
    found = discover(address, steps)
    assert found["found_by"] == steps
    assert (found["imap"]["hostname"], found["imap"]["port"]) == (host, 993)
    assert (found["smtp"]["hostname"], found["smtp"]["port"]) == (host, 465)
    assert found["imap"]["username"] == address


def test_client_discovery_takes_thunderbirds_first_step():
    assert discover(REMI, "autoconfig,well-known,srv")["found_by"] == "autoconfig"


# -- web admin and API, with the domain's certificate --------------------------------------------------

HTTPS_GET = r"""
import http.client, json, socket, ssl, sys
host, address, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context()  # the system's trust store, where the host's CA was added
sock = socket.create_connection((address, port), timeout=10)
tls = context.wrap_socket(sock, server_hostname=host)  # checks the name against the certificate
conn = http.client.HTTPSConnection(host, port, context=context)
conn.sock = tls
conn.request("GET", path, headers={"Host": host})
response = conn.getresponse()
print(json.dumps({"status": response.status, "location": response.getheader("location"),
                  "authenticate": response.getheader("www-authenticate")}))
"""


def https_get(host: str, address: str, port: int, path: str) -> dict:
    return json.loads(python("client", HTTPS_GET, host, address, str(port), path).stdout)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize(("group", "name"), [(g, n) for g, h in HOSTS.items() for n in (h["domain"], h["name"])])
def test_web_admin_answers_on_443_with_the_domains_certificate(group, name, family):
    """Before the first admin exists the web admin is behind the basic-auth gate (401)."""
    answer = https_get(name, HOSTS[group][family], 443, "/")
    assert answer["status"] in {200, 302, 303, 401}, answer


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("group", HOSTS)
def test_api_answers_on_4000_with_the_domains_certificate(group, family):
    """The REST API refuses a request without a token (RFC 6750 §3: 401)."""
    answer = https_get(HOSTS[group]["domain"], HOSTS[group][family], 4000, "/v1/aliases")
    assert answer["status"] == 401, answer


@pytest.mark.parametrize("group", HOSTS)
def test_mta_sts_policy_is_served_on_its_name(group):
    answer = https_get(f"mta-sts.{HOSTS[group]['domain']}", HOSTS[group]["ipv4"], 443, "/.well-known/mta-sts.txt")
    assert answer["status"] == 200


# -- mail between the Sealmail host and the remote MTA --------------------------------------------------


def remote_message(subject: str, timeout: float = 90) -> email.message.EmailMessage:
    """The message with that subject in someone@remote.test's Maildir (the remote's local view)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run("remote", ["grep", "-rlF", f"Subject: {subject}", "/home/someone/Maildir/new"], check=False)
        if found.stdout.strip():
            raw = run("remote", ["cat", found.stdout.split()[0]]).stdout
            return email.message_from_string(raw, policy=email.policy.default)
        time.sleep(2)
    log = run("remote", ["journalctl", "-u", "postfix@-", "-n", "40", "--no-pager"], check=False).stdout
    pytest.fail(f"no message {subject!r} reached someone@{REMOTE} in {timeout}s; the remote's log:\n{log}")


def remote_results(message: email.message.EmailMessage) -> str:
    """The Authentication-Results the remote's own verifiers added (authserv-id mx.remote.test)."""
    ours = [str(h) for h in message.get_all("Authentication-Results", []) if str(h).strip().startswith(f"mx.{REMOTE}")]
    assert ours, f"no Authentication-Results from mx.{REMOTE}: {message.items()}"
    return "\n".join(" ".join(h.split()) for h in ours)


def swaks_submit(sender: dict, to: str, subject: str) -> None:
    result = run("client", [
        "swaks", "--server", sender["host"], "--port", "465", "--tls-on-connect",
        "--tls-verify", "--tls-ca-path", "/etc/ssl/certs/ca-certificates.crt",
        "--auth", "PLAIN", "--auth-user", sender["address"], "--auth-password", sender["password"],
        "--from", sender["address"], "--to", to,
        "--header", f"Subject: {subject}", "--header", f"From: <{sender['address']}>",
        "--body", "sent from the world client"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("who", ["paul", "marie", "claire"])
def test_submitted_mail_reaches_the_remote_with_spf_dkim_and_dmarc_passing(who, request):
    """A user submits on 465 (RFC 8314); the remote's OpenDKIM, OpenDMARC and policyd-spf (none of
    them ours) find SPF (RFC 7208), DKIM with the RSA key (RFC 6376) and with the Ed25519 key
    (RFC 8463), and DMARC (RFC 7489) pass.

    For the IDN domain policyd-spf reports none: python3-spf 2.0.14 gets answer names back as
    U-labels from its DNS layer and misses its own cache for the A-label. OpenDMARC's own SPF
    check of the same envelope passes; no verifier may say fail."""
    sender = request.getfixturevalue(who)
    domain = sender["address"].rpartition("@")[2]
    subject = f"world outbound {secrets.token_hex(4)}"
    swaks_submit(sender, f"someone@{REMOTE}", subject)
    results = remote_results(remote_message(subject))
    # RFC 8601 §2.2: one clause per method; comments (in parentheses) may hold ";".
    clauses = [c.strip() for c in re.sub(r"\([^)]*\)", "", results).replace("\n", ";").split(";")]
    assert any(re.match(r"spf=pass\b", c) and f"smtp.mailfrom={domain}" in c for c in clauses), results
    # Both signatures: RSA (RFC 6376) and Ed25519 (RFC 8463), which OpenDKIM 2.11 verifies too.
    for algorithm in ("rsa-sha256", "ed25519-sha256"):
        assert any(re.match(r"dkim=pass\b", c) and f"header.d={domain}" in c and f"header.a={algorithm}" in c
                   for c in clauses), results
    assert any(re.match(r"dmarc=pass\b", c) and f"header.from={domain}" in c for c in clauses), results
    assert not [c for c in clauses if re.match(r"(spf|dkim|dmarc)=(fail|softfail|permerror)\b", c)], results


IMAP_FIND = r"""
import imaplib, json, os, ssl, sys
host, user, subject = sys.argv[1], sys.argv[2], sys.argv[3]
folder = sys.argv[4] if len(sys.argv) > 4 else "INBOX"
context = ssl.create_default_context()
with imaplib.IMAP4_SSL(host, 993, ssl_context=context) as imap:
    imap._mode_utf8()  # user names in UTF-8 (RFC 6855); harmless for ASCII ones
    imap.login(user, os.environ["WORLD_PASSWORD"])
    found = []
    for _ in range(45):  # a folder a Sieve script makes appears when the message is filed
        status, _data = imap.select('"' + folder + '"')
        if status == "OK":
            break
        import time; time.sleep(2)
    for _ in range(45):
        status, numbers = imap.search(None, "SUBJECT", '"' + subject + '"')
        if numbers[0]:
            break
        import time; time.sleep(2); imap.noop()
    for number in numbers[0].split():
        status, data = imap.fetch(number, "(BODY.PEEK[HEADER])")
        found.append(data[0][1].decode("utf-8", "replace"))
print(json.dumps(found))
"""


def imap_headers(account: dict, subject: str, folder: str = "INBOX") -> list[str]:
    result = python("client", IMAP_FIND, account["host"], account["address"], subject, folder,
                    env={"WORLD_PASSWORD": account["password"]})
    return json.loads(result.stdout)


@pytest.mark.parametrize(("family", "sender", "remote_ip"),
                         [("ipv6", "ipv6-sender", f"IPv6:{REMOTE_V6}"),  # RFC 5321 §4.1.3 address literal
                          ("ipv4", "ipv4-sender", REMOTE_V4)])
@pytest.mark.parametrize("who", ["marie", "claire"])
def test_remote_mta_delivers_over_each_family_and_the_client_reads_it(who, family, sender, remote_ip, request):
    """Postfix's smtp client (restricted to one address family for this sender) finds the MX
    (RFC 5321 §5.1) and delivers; the client reads the message over IMAPS."""
    account = request.getfixturevalue(who)
    subject = f"world inbound {family} {secrets.token_hex(4)}"
    message = f"From: {sender}@{REMOTE}\nTo: {account['address']}\nSubject: {subject}\n\nover {family}\n"
    run("remote", ["/usr/sbin/sendmail", "-f", f"{sender}@{REMOTE}", account["address"]], input=message)
    headers = imap_headers(account, subject)
    assert len(headers) == 1, headers
    assert f"[{remote_ip}]" in headers[0], headers[0]
    # Scanned by the host's rspamd and found clean (a Junk verdict would have filed it in Junk).
    assert re.search(r"^X-Spam-Status: No, score=", headers[0], re.MULTILINE), headers[0]


# GTUBE (rspamd's test pattern for a message it must reject).
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.mark.parametrize("who", ["marie", "claire"])
def test_gtube_from_the_remote_is_refused_at_data_with_550_5_7_1(who, request):
    """RFC 5321 §4.2.5, RFC 3463 §3.8 (X.7.1): the deployed MX asks the host's rspamd before it
    answers the end of DATA; rspamd's reject becomes 550 5.7.1 with its message. Sent with swaks
    from the remote MTA's host (SPF and DMARC of remote.test pass: the refusal is the content's)."""
    account = request.getfixturevalue(who)
    result = run("remote", ["swaks", "--server", account["host"], "--port", "25", "--helo", f"mx.{REMOTE}",
                            "--from", f"someone@{REMOTE}", "--to", account["address"],
                            "--header", f"Subject: world gtube {secrets.token_hex(4)}", "--body", GTUBE],
                 check=False)
    lines = result.stdout.splitlines()
    end = [i for i, line in enumerate(lines) if line.strip() == "-> ."]
    assert len(end) == 1 and end[0] + 1 < len(lines), f"swaks sent no message:\n{result.stdout}{result.stderr}"
    reply = SWAKS_REPLY.match(lines[end[0] + 1])
    assert reply and reply.group(1) == "550 5.7.1 Gtube pattern", result.stdout


MBSYNC_RC = """IMAPAccount world
Host {host}
Port {port}
User "{user}"
PassCmd "printenv WORLD_PASSWORD"
SSLType IMAPS
CertificateFile /etc/ssl/certs/ca-certificates.crt

IMAPStore world-remote
Account world

MaildirStore world-local
Path /root/mail/
Inbox /root/mail/INBOX
SubFolders Verbatim

Channel world
Far :world-remote:
Near :world-local:
Patterns INBOX
Create Near
Sync Pull
"""


def test_smtputf8_mail_to_remi_is_read_with_mbsync_from_what_discovery_found(remi):
    """The remote sends to rémi@universitéxyz.fr with SMTPUTF8 (RFC 6531; Postfix's sendmail asks for
    it by itself when the envelope or headers are UTF-8); the client configures
    mbsync from autoconfig alone and finds the message in its Maildir."""
    subject = f"world smtputf8 {secrets.token_hex(4)}"
    message = f"From: expéditeur@{REMOTE}\nTo: {REMI}\nSubject: {subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nbonjour Rémi\n"
    run("remote", ["/usr/sbin/sendmail", "-f", f"expéditeur@{REMOTE}", REMI], input=message)
    found = discover(REMI, "autoconfig,well-known,srv")
    rc = MBSYNC_RC.format(host=found["imap"]["hostname"], port=found["imap"]["port"], user=found["imap"]["username"])
    run("client", ["sh", "-c", "mkdir -p /root/mail && cat > /root/.mbsyncrc"], input=rc)
    for _ in range(30):
        sync = run("client", ["mbsync", "-a"], env={"WORLD_PASSWORD": remi["password"]}, check=False)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        grep = run("client", ["grep", "-rlF", f"Subject: {subject}", "/root/mail/INBOX"], check=False)
        if grep.stdout.strip():
            break
        time.sleep(3)
    assert grep.stdout.strip(), "mbsync never saw the message"
    text = run("client", ["cat", grep.stdout.split()[0]]).stdout
    assert "bonjour Rémi" in text


MSMTP_RC = """account world
host {host}
port {port}
tls on
tls_starttls off
tls_trust_file /etc/ssl/certs/ca-certificates.crt
auth on
user {user}
passwordeval "printenv WORLD_PASSWORD"
from {user}
account default : world
"""


def test_client_sends_with_msmtp_through_what_discovery_found(remi):
    """msmtp configured from discovery submits to someone@remote.test over implicit TLS."""
    found = discover(REMI, "autoconfig,well-known,srv")
    rc = MSMTP_RC.format(host=found["smtp"]["hostname"], port=found["smtp"]["port"], user=found["smtp"]["username"])
    run("client", ["sh", "-c", "umask 077 && cat > /root/.msmtprc"], input=rc)
    subject = f"world msmtp {secrets.token_hex(4)}"
    message = f"From: {REMI}\nTo: someone@{REMOTE}\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\nde la part de Rémi\n"
    sent = run("client", ["msmtp", "-a", "world", f"someone@{REMOTE}"], input=message,
               env={"WORLD_PASSWORD": remi["password"]}, check=False)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    remote_message(subject)


# -- calendars and contacts: vdirsyncer from https://<domain> ------------------------------------------

VDIRSYNCER_CONFIG = """[general]
status_path = "/root/vdirsyncer/status/"

[pair world_calendar]
a = "world_calendar_local"
b = "world_calendar_remote"
collections = ["from a", "from b"]

[storage world_calendar_local]
type = "filesystem"
path = "/root/vdirsyncer/calendars/"
fileext = ".ics"

[storage world_calendar_remote]
type = "caldav"
url = "{caldav}"
username = "{user}"
password.fetch = ["command", "printenv", "WORLD_PASSWORD"]

[pair world_contacts]
a = "world_contacts_local"
b = "world_contacts_remote"
collections = ["from a", "from b"]

[storage world_contacts_local]
type = "filesystem"
path = "/root/vdirsyncer/contacts/"
fileext = ".vcf"

[storage world_contacts_remote]
type = "carddav"
url = "{carddav}"
username = "{user}"
password.fetch = ["command", "printenv", "WORLD_PASSWORD"]
"""

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//molecule world//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261206T120000Z
DTSTART:20261224T180000Z
DTEND:20261224T200000Z
SUMMARY:Réveillon
END:VEVENT
END:VCALENDAR
"""

CARD = """BEGIN:VCARD
VERSION:3.0
UID:{uid}
FN:Rémi Exemple
N:Exemple;Rémi;;;
EMAIL:{address}
END:VCARD
"""


@pytest.mark.parametrize(("kind", "port"), [("caldav", 5000), ("carddav", 6000)])
@pytest.mark.parametrize("group", HOSTS)
def test_the_domain_leads_calendar_clients_to_the_dav_server_rfc6764_5(group, kind, port):
    """https://<domain>/.well-known/caldav|carddav answers a redirect to the DAV server, without
    asking for a password there (the web admin's gate does not stand in the way)."""
    host = HOSTS[group]
    answer = https_get(host["domain"], host["ipv4"], 443, f"/.well-known/{kind}")
    assert answer["status"] in {301, 302, 307, 308}, answer
    assert answer["location"] == f"https://{host['name']}:{port}/", answer


@pytest.mark.parametrize(("address", "host"), [(REMI, MAIL_HOST), (CLAIRE, CLOUD_HOST)])
def test_client_discovers_calendars_and_contacts_from_the_address_rfc6764_6(address, host):
    """SRV _caldavs/_carddavs name the DAV server, TXT path= its context path."""
    found = discover(address, "srv")
    assert found["caldav"] == f"https://{host}:5000/"
    assert found["carddav"] == f"https://{host}:6000/"


def test_vdirsyncer_syncs_a_calendar_and_an_address_book_it_discovered(remi):
    """From the address alone: the servers come from RFC 6764 §6 discovery (SRV + TXT), and
    vdirsyncer finds the principal and its collections there by itself (well-known URI, RFC 6764
    §5, and current-user-principal, RFC 5397); an event and a card go up, and come back into a
    fresh copy. (vdirsyncer cannot start from https://<domain>/: its HTTP library drops the
    password when the well-known redirect changes the port, and it does not answer the 401.)"""
    uid = secrets.token_hex(8)
    found = discover(REMI, "srv")
    config = VDIRSYNCER_CONFIG.format(caldav=found["caldav"], carddav=found["carddav"], user=remi["address"])
    env = {"WORLD_PASSWORD": remi["password"]}
    # The local collections are named as the server's default ones, so nothing needs creating: a
    # calendar and an address book share the principal's names (one "personal" of each is a
    # conflict, 405 on the second MKCOL, RFC 4918 §9.3.1).
    run("client", ["sh", "-c", "rm -rf /root/vdirsyncer && mkdir -p /root/vdirsyncer/calendars/calendar "
                   "/root/vdirsyncer/contacts/contacts /root/.config/vdirsyncer && cat > /root/.config/vdirsyncer/config"],
        input=config)
    run("client", ["sh", "-c", f"cat > /root/vdirsyncer/calendars/calendar/{uid}.ics"], input=EVENT.format(uid=uid))
    run("client", ["sh", "-c", f"cat > /root/vdirsyncer/contacts/contacts/{uid}.vcf"],
        input=CARD.format(uid=uid, address=remi["address"]))
    discovered = run("client", ["sh", "-c", "yes | vdirsyncer discover"], env=env, check=False)
    assert discovered.returncode == 0, discovered.stdout + discovered.stderr
    synced = run("client", ["vdirsyncer", "sync"], env=env, check=False)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    # A fresh local copy gets both items back from the server.
    run("client", ["sh", "-c", "rm -rf /root/vdirsyncer/status /root/vdirsyncer/calendars/* /root/vdirsyncer/contacts/*"])
    again = run("client", ["sh", "-c", "yes | vdirsyncer discover && vdirsyncer sync"], env=env, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    back = run("client", ["grep", "-rl", uid, "/root/vdirsyncer/calendars", "/root/vdirsyncer/contacts"], check=False)
    assert len(back.stdout.split()) == 2, back.stdout


# -- Sieve filters: ManageSieve found through DNS (RFC 5804 §1.8) -------------------------------------------

SIEVE_SCRIPT = ('require ["fileinto", "mailbox"];\n'
                'if header :contains "List-Id" "lists.example.org" {\n    fileinto :create "Lists";\n}\n')


def test_sieve_connect_finds_managesieve_by_srv_and_keeps_a_script_rfc5804(remi):
    """Given only the domain, sieve-connect asks the world's resolver for _sieve._tcp.<domain>, reaches
    the host on 4190 through the firewall, checks its certificate for the domain after STARTTLS, signs
    in with PLAIN, uploads and activates a script, and lists it back as the active one."""
    run("client", ["sh", "-c", "cat > /root/world.sieve"], input=SIEVE_SCRIPT)
    base = ["sieve-connect", "--server", DOMAIN, "--user", REMI, "--passwordfd", "0", "--noclearchan",
            "--authmech", "PLAIN"]
    for action in (["--upload", "--localsieve", "/root/world.sieve", "--remotesieve", "world"],
                   ["--activate", "--remotesieve", "world"]):
        done = run("client", [*base, *action], input=remi["password"] + "\n", check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    listed = run("client", [*base, "--list"], input=remi["password"] + "\n", check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.splitlines() == ['"world" ACTIVE']
    # The server reads what it stores: the host's own CLI shows the same script, active.
    shown = run("sealmail", [ADMIN, "sieve", "show", REMI, "world"]).stdout
    assert 'fileinto :create "Lists"' in shown
    # The deployed MX runs it (RFC 5228 §4.1, RFC 5490 §3.2): the remote's next list message to rémi is
    # filed in the folder the script names, created for it, and read there over IMAPS.
    subject = f"world sieve {secrets.token_hex(4)}"
    message = (f"From: liste@{REMOTE}\nTo: {REMI}\nSubject: {subject}\nList-Id: <talk.lists.example.org>\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nà la liste\n")
    run("remote", ["/usr/sbin/sendmail", "-f", f"liste@{REMOTE}", REMI], input=message)
    filed = imap_headers(remi, subject, "Lists")
    assert len(filed) == 1, filed


# -- no open relay: the probes of tests/relayprobes.py from the client, against the MX on port 25 --------

_spec = importlib.util.spec_from_file_location("relayprobes", PROJECT_DIR / "tests" / "relayprobes.py")
relayprobes = importlib.util.module_from_spec(_spec)
sys.modules["relayprobes"] = relayprobes  # its dataclasses look their module up there
_spec.loader.exec_module(relayprobes)

# The RCPT TO reply in swaks's transcript: "<-  " (clear), "<~  " (TLS), "<** " / "<~* " (errors).
SWAKS_REPLY = re.compile(r"^<[-~*]{1,2} +(\d{3}[ -].*)$")

# A path with a comma (a source route through two hosts) cannot go through swaks, which splits --to
# on commas: those are sent with Python's smtplib from the same client.
RAW_RCPT = r"""
import smtplib, sys
with smtplib.SMTP(sys.argv[1], int(sys.argv[3]) if len(sys.argv) > 3 else 25, local_hostname="client.world.test",
                  timeout=30) as c:
    c.ehlo()  # smtplib greets by itself only in sendmail()
    code, text = c.mail("probe@client.world.test")
    assert code == 250, (code, text)
    code, text = c.docmd("RCPT TO:" + sys.argv[2])
    print(code, text.decode())
"""


def swaks_rcpt(path: str) -> str:
    """Send MAIL and RCPT TO:<path> to the host's MX from the client; the RCPT reply."""
    address = path.removeprefix("<").removesuffix(">")
    if "," in address:
        return python("client", RAW_RCPT, MAIL_HOST, path).stdout.strip()
    result = run("client", ["swaks", "--server", MAIL_HOST, "--port", "25", "--helo", "client.world.test",
                            "--from", "probe@client.world.test", "--to", address, "--quit-after", "RCPT"],
                 check=False)
    lines = result.stdout.splitlines()
    sent = [i for i, line in enumerate(lines) if line.strip().startswith("-> RCPT TO:")]
    assert len(sent) == 1, f"swaks sent no single RCPT for {path}:\n{result.stdout}{result.stderr}"
    reply = SWAKS_REPLY.match(lines[sent[0] + 1]) if sent[0] + 1 < len(lines) else None
    assert reply, f"no reply to RCPT for {path}:\n{result.stdout}"
    return reply.group(1)


@pytest.mark.parametrize("relay_probe", relayprobes.FOREIGN_PROBES, ids=[p.id for p in relayprobes.FOREIGN_PROBES])
def test_the_mx_is_no_open_relay_from_outside(relay_probe):
    """RFC 5321 §3.6.2, §7.1: from a client on the network, the deployed MX refuses every spelling of
    a foreign destination (percent hack, source routes, quoted local parts, address literals,
    trailing dots, subdomains, bang paths) with 550/553/554 and 5.7.1 or 5.1.x, never 250."""
    reply = swaks_rcpt(relay_probe.path)
    assert not reply.startswith("250"), f"OPEN RELAY: {relay_probe.path} -> {reply}"
    assert relayprobes.refused_as_relay(reply), f"{relay_probe.path} -> {reply}"


AUTH_PROBE = r"""
import base64, json, smtplib, ssl, sys
seen, tried = {}, {}
with smtplib.SMTP(sys.argv[1], 25, local_hostname="client.world.test", timeout=30) as c:
    c.ehlo()
    seen["clear"] = c.esmtp_features.get("auth")
    tried["clear"] = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0someone@example.test\0x").decode())
    c.starttls(context=ssl.create_default_context())
    c.ehlo()
    seen["tls"] = c.esmtp_features.get("auth")
    tried["tls"] = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0someone@example.test\0x").decode())
print(json.dumps({"seen": seen, "tried": {k: [v[0], v[1].decode()] for k, v in tried.items()}}))
"""


def test_the_mx_offers_no_auth_from_outside():
    """RFC 4954 §1, RFC 6409 §4.3: AUTH belongs to submission; the MX offers none, in clear or after
    STARTTLS, and answers the command with 502 5.5.1."""
    found = json.loads(python("client", AUTH_PROBE, MAIL_HOST).stdout)
    assert found["seen"] == {"clear": None, "tls": None}, found
    for layer, (code, text) in found["tried"].items():
        assert (code, text[:5]) == (502, "5.5.1"), (layer, code, text)
