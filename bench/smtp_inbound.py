"""Inbound SMTP benchmark: Sealmail's MX beside aiosmtpd's ceiling and Postfix delivering to Dovecot.

    .venv/bin/python bench/smtp_inbound.py [--messages 5000] [--connections 8] [--no-postfix]
                                           [--one-mailbox] [--rounds N] [--no-ceiling] [--mx-hosts N]
                                           [--rspamd [--rspamd-workers N]] [--sieve]

The same signed 4 KB messages go, over 8 concurrent connections from one lean client, to:

* a plain aiosmtpd handler that only counts (this machine's ceiling for the library Sealmail uses);
* ``sealmail serve mx`` as its own process (with one session process per core behind it, as the
  Ansible role deploys it), with every check on: SPF, DKIM (each message carries an
  RSA-2048 and an Ed25519 signature) and DMARC asked of a real DNS server (dnsmasq, TTL 0, so every
  message asks again), alias resolution, and each message sealed to its mailbox's public key into
  that mailbox's spool and fsynced before the ``250``; with a private Redis as in production
  (dedup keys and new-mail events);
* Debian's Postfix (its own config directory, queue and loopback port, no checks) delivering over
  LMTP to Dovecot (its own config, Maildir in a temporary directory). "Accepted" is the rate of
  ``250`` replies (Postfix's queue file is fsynced by then); "end to end" runs until every message
  is a file in a Maildir.

Recipients: 8 mailboxes (user0..user7@example.test) drawn with Zipf weights (user0 gets ~37%,
user7 ~5%); one message in ten is plus-addressed (user0+news@...). With ``--one-mailbox`` every
message goes to one alias (user0@example.test): the hot-mailbox case, where every accepted message
is an fsynced append to the same spool (and, for Postfix, to the same Maildir). Senders: 4 domains, each with
SPF ``ip4:127.0.0.1 -all`` and DMARC ``p=reject``. Latency is measured per message from the end of
DATA to the ``250``. Print numbers, never assert on them: load on this shared machine varies, so
run it more than once (``--rounds N`` runs Sealmail and Postfix back to back N times, each round
with fresh messages, and prints the median of each).

``--mx-hosts N`` adds the multi-server arrangement (issue 19), on the same messages: MX hosts that
reach the mailboxes only through one data host's ``sealmail serve store`` (mutual TLS over
loopback, ``SEALMAIL_STORE_URL``, and ``SEALMAIL_CONFIG_BACKEND=store`` for aliases and keys, as
front-ends without MongoDB are deployed), once with one MX host and once with N. Each MX host is
its own ``sealmail serve mx`` with its own data directory, env file, port, client certificate and
one session process per core; the MX seals, the store appends the sealed record to the spool and
fsyncs it before the ``250``. The client's connections are split across the MX hosts (connection i
to host i mod N), each taking the next message when it is free. Every arrangement has its own data
and its own Redis, so no run sees another's dedup keys. On one machine the "hosts" share its cores
(and the store, Redis and the client share them too): N MX hosts here measure contention for the
store and for these cores, not N machines' worth of CPU. The CPU column counts the MX processes
and the store process.

``--rspamd`` (issue 21) scans every message with one private rspamd (``spam.localrspamd``: Debian's
configuration, offline, the bench's DNS server as its resolver, a Redis of its own for Bayes, its
compiled rules cached in ``~/.cache/sealmail``), on both sides: Sealmail's MX asks its normal
worker (``SEALMAIL_RSPAMD_URL``), Postfix its proxy worker in milter mode (``smtpd_milters``,
``self_scan``: the proxy scans each message itself, so each message is scanned once, as on the
Sealmail side). Each has ``--rspamd-workers`` processes (default: one per core, rspamd's own
default for the normal worker). When rspamd cannot answer, both defer (``451``: Postfix's
``milter_default_action = tempfail``, Sealmail's ``SEALMAIL_RSPAMD_UNAVAILABLE=tempfail``), so no
message is counted that skipped the scan. The clients are all on loopback, which rspamd would wave
through; ``check_local`` has it check them as an MX's remote clients (SPF, DKIM, DMARC, HELO and
host name; the client and the sender domains have A and PTR records for it). After each run a
check line compares rspamd's scanned count (the controller's ``/stat``) with the messages sent;
the last column is rspamd's CPU per message during the run. The MX's log must hold no scan that
rspamd left unanswered. About one message in seven (14-16 %) has an unencoded 8-bit From (the
corpus's names) and lands in rspamd's ``add header`` band: Junk for Sealmail, ``X-Spam: Yes`` for
Postfix (the check lines count both).

``--sieve`` (issue 22) gives every mailbox an active Sieve script of 20 rules (``SIEVE_RULES``:
header, address, envelope, size and spamtest tests, lists filed with ``fileinto :create``, flags):
the MX reads it at each RCPT and runs it after DATA before sealing. A quarter of the messages (one
sender domain of four) is filed into a folder of its own, the rest kept; the Postfix side has no
filter (Dovecot's Sieve would run at LMTP delivery, not in this comparison).

Needs: dnsmasq (``scripts/system-deps test``), rspamd for ``--rspamd``, and for the anchor, as root:
``apt-get install postfix dovecot-lmtpd`` — then stop the system Postfix Debian starts
(``postfix stop; update-rc.d postfix disable``) so nothing listens on port 25.
Measured numbers and what they led to: docs/developer-guide.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # dnsserver
sys.path.insert(0, str(HERE))  # bench/smtpkit before tests/smtpkit

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains, sievescripts
from sealmail.services.dkim import ensure_keys
from sealmail.services.dnsrecords import records_for
from sealmail.settings import Settings
from sealmail.smtp import dkimsign
from sealmail.spam.localrspamd import LocalRspamd, default_cache_dir, rspamd_binary
from sealmail.store.spool import open_message
from sealmail.tls.devca import ensure_client_certificate, ensure_dev_certificates

from corpus import NAMES, vocabulary
from dnsserver import DnsServer
from smtpkit import (
    Mail,
    Run,
    blast,
    counting_sink,
    cpu_seconds,
    free_port,
    load,
    redis_server,
    sealmail_component,
    write_env_file,
)

DOMAIN = "example.test"
MAILBOXES = [f"user{i}" for i in range(8)]
SENDERS = [f"sender{i}.test" for i in range(4)]
SIZE = 4096
WARM_UP = 50  # messages sent to each server before the measured run
# ``--sieve``: what a user who filters would have; the sender1.test rule files a quarter of the messages.
SIEVE_RULES = """require ["fileinto", "mailbox", "envelope", "imap4flags", "relational", "comparator-i;ascii-numeric",
          "spamtest", "variables"];
if header :contains "List-Id" "announce.lists.example" { fileinto :create "Lists/announce"; stop; }
if header :contains "List-Id" "dev.lists.example" { fileinto :create "Lists/dev"; stop; }
if header :contains "List-Id" "users.lists.example" { fileinto :create "Lists/users"; stop; }
if exists "List-Unsubscribe" { fileinto :create "Newsletters"; stop; }
if address :is "from" ["boss@example.test", "ceo@example.test"] { addflag "\\Flagged"; }
if address :domain :is "from" "bank.example" { fileinto :create "Finance"; stop; }
if header :matches "Subject" ["*invoice*", "*receipt*", "*order #*"] { fileinto :create "Finance"; stop; }
if header :contains "Subject" ["[JIRA]", "[GitLab]", "[GitHub]"] { fileinto :create "Work/Notifications"; stop; }
if address :localpart :is "to" "noreply" { discard; stop; }
if envelope :domain :is "from" "sender1.test" { fileinto :create "Sender1"; stop; }
if envelope :localpart :is "to" "user7+news" { fileinto :create "News"; stop; }
if size :over 5M { addflag "$Large"; }
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "Junk"; stop; }
if header :contains "X-Mailer" "BulkMailer" { fileinto :create "Bulk"; stop; }
if header :is "Precedence" ["bulk", "junk", "list"] { fileinto :create "Bulk"; stop; }
if address :all :is "from" "alerts@monitoring.example" { fileinto :create "Alerts"; stop; }
if header :matches "Subject" "Re: *" { set "thread" "${1}"; }
if anyof (header :contains "Subject" "meeting", header :contains "Subject" "calendar") { addflag "$Meeting"; }
if not exists "Date" { addflag "$NoDate"; }
if header :contains "Auto-Submitted" "auto-generated" { fileinto :create "Automatic"; stop; }
"""


# ---- the messages ---------------------------------------------------------------------------------
def _unsigned(n: int, rng: random.Random, words: list[str], sender: str, rcpt: str, size: int) -> bytes:
    name = rng.choice(NAMES)
    local = name.split()[0].lower()
    head = (
        f"From: {name} <{local}@{sender}>\r\nTo: <{rcpt}>\r\n"
        f"Subject: {' '.join(rng.choices(words[:200], k=5)).capitalize()} #{n}\r\n"
        f"Date: Mon, 23 Nov 2026 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <bench-{n}@{sender}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    lines, length = [], len(head)
    while length < size:
        line = " ".join(rng.choices(words[:2000], k=12)).encode() + b"\r\n"
        lines.append(line)
        length += len(line)
    body = b"".join(lines)[: max(0, size - len(head) - 2)] + b"\r\n"
    return head + body


_signer: Settings | None = None


def _init_signer(data_dir: str) -> None:
    global _signer  # noqa: PLW0603 - one settings object per signing process
    _signer = Settings(data_dir=Path(data_dir))


def _sign(job: tuple[str, bytes]) -> bytes:
    assert _signer is not None
    return dkimsign.sign(_signer, job[0], job[1])


def make_mails(count: int, senders_dir: Path, one_mailbox: bool = False) -> list[Mail]:
    """Signed messages of ~4 KB (signatures included) with the recipient mix described above."""
    rng = random.Random(20261123)
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(MAILBOXES))]
    envelopes, jobs = [], []
    overhead = {s: len(_sign_probe(senders_dir, s)) - len(_PROBE) for s in SENDERS}
    for n in range(count):
        sender = SENDERS[n % len(SENDERS)]
        user = rng.choices(MAILBOXES, weights)[0]
        rcpt = f"{user}+news@{DOMAIN}" if rng.random() < 0.1 else f"{user}@{DOMAIN}"
        if one_mailbox:
            rcpt = f"{MAILBOXES[0]}@{DOMAIN}"
        envelopes.append((f"bounces@{sender}", rcpt))
        jobs.append((sender, _unsigned(n, rng, words, sender, rcpt, SIZE - overhead[sender])))
    with multiprocessing.get_context("fork").Pool(
        os.cpu_count(), initializer=_init_signer, initargs=(str(senders_dir),)
    ) as pool:
        signed = pool.map(_sign, jobs, chunksize=64)
    return [Mail(mail_from, (rcpt,), data) for (mail_from, rcpt), data in zip(envelopes, signed, strict=True)]


_PROBE = (  # the header fields the messages have: the signatures' h= lists are the same
    b"From: a@x\r\nTo: b@y\r\nSubject: s\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <p@x>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nx\r\n"
)


def _sign_probe(senders_dir: Path, sender: str) -> bytes:
    return dkimsign.sign(Settings(data_dir=senders_dir), sender, _PROBE)


# ---- DNS -----------------------------------------------------------------------------------------
def dns_for(workdir: Path, senders: Settings, ttl: int, client: bool = False) -> DnsServer:
    """The senders' SPF, DKIM and DMARC records, our MX; with ``client``, the sending client's name too
    (A and PTR, as a well-kept mail server's): rspamd scores a client without them (HFILTER_*)."""
    dnsd = DnsServer(workdir, ttl=ttl)
    if client:
        dnsd.a("client.bench.test", "127.0.0.1")  # dnsmasq's host-record answers the PTR too
        for sender in SENDERS:  # a sender domain that has no address is a reason to doubt it
            dnsd.a(sender, "127.0.0.1")
    for sender in SENDERS:
        ensure_keys(senders, sender)
        for record in records_for(senders, sender):
            if record.type == "TXT" and "_domainkey" in record.name:
                dnsd.txt(record.name, record.value)
        dnsd.txt(sender, "v=spf1 ip4:127.0.0.1 -all")
        dnsd.txt(f"_dmarc.{sender}", "v=DMARC1; p=reject")
    dnsd.a(f"mx.{DOMAIN}", "127.0.0.1")
    dnsd.mx(DOMAIN, f"mx.{DOMAIN}")
    return dnsd


# ---- Sealmail -------------------------------------------------------------------------------------
def prepare_sealmail(
    base: Path, dns: str, redis_url: str | None, extra: list[str], sieve: bool = False
) -> tuple[Path, Settings, dict[str, str]]:
    data = base / "sealmail"
    values: dict[str, object] = {
        "SEALMAIL_DATA_DIR": data,
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PORT": free_port(),
        "SEALMAIL_HOSTNAME": f"mx.{DOMAIN}",
        "SEALMAIL_DNS_SERVERS": dns,
        "SEALMAIL_LOG_LEVEL": "INFO",  # one line per message, as in production
        "SEALMAIL_MX_PROCESSES": os.cpu_count() or 1,  # as the Ansible role sets it: one per vCPU
    }
    if redis_url:
        values["SEALMAIL_REDIS_URL"] = redis_url
    for item in extra:
        name, _, value = item.partition("=")
        values[name] = value
    data.mkdir(mode=0o700)
    env_file = write_env_file(base / "sealmail.env", values)
    settings = Settings(data_dir=data)
    store = SQLiteConfigStore(settings.config_db_path)
    passwords = {}
    try:
        domains.add_domain(store, DOMAIN, settings)
        for user in MAILBOXES:
            alias = aliases.add_alias(store, f"{user}@{DOMAIN}")
            passwords[user] = credentials.set_password(store, settings, f"{user}@{DOMAIN}")
            if sieve:
                sievescripts.save_and_activate(store, alias.id, "rules", SIEVE_RULES)
    finally:
        store.close()
    return env_file, settings, passwords


def check_sealmail(
    settings: Settings, passwords: dict[str, str], expected: int, scanned: bool = False, sieve: bool = False
) -> str:
    """Every accepted message is a sealed spool record; a sample opens and shows every check passed
    (and, ``scanned``, rspamd's verdict in the header; ``sieve``, how many a script filed elsewhere)."""
    store = SQLiteConfigStore(settings.config_db_path)
    total, checked, filed = 0, 0, 0
    try:
        for user, password in passwords.items():
            unlocked = credentials.unlock(store, settings, f"{user}@{DOMAIN}", password)
            path = settings.data_dir / "spool" / f"{unlocked.mailbox_id}.sqlite"
            if not path.exists():
                continue
            with contextlib.closing(sqlite3.connect(path)) as db:
                total += db.execute("SELECT count(*) FROM spool").fetchone()[0]
                sample = 40 if sieve else 3
                for (sealed,) in db.execute("SELECT sealed FROM spool ORDER BY seq LIMIT ?", (sample,)):
                    _, filing, raw = open_message(unlocked.secrets.private_key, unlocked.mailbox_id, sealed)
                    filed += filing.copies[0].folder != "INBOX"
                    head = raw.split(b"\r\n\r\n", 1)[0]
                    assert head.count(b"dkim=pass") == 2 and b"spf=pass" in head and b"dmarc=pass" in head, head
                    assert not scanned or (b"\r\nX-Spam-Score: " in head and b"unchecked" not in head), head
                    checked += 1
    finally:
        store.close()
    if total != expected:
        raise RuntimeError(f"{total} sealed records in the spools, {expected} messages accepted")
    verdict = ", rspamd's score" if scanned else ""
    if sieve:
        verdict += f"; {filed} filed by the Sieve script"
    return f"{total} sealed records in {len(passwords)} spools; {checked} opened: SPF, 2x DKIM and DMARC pass{verdict}"


# ---- the arrangements: one host, or MX hosts reaching the mailboxes through one data host ---------
@dataclass
class Arrangement:
    """Sealmail as one host (``store_env`` None: the MX writes the spools itself) or as MX hosts and a
    data host (``sealmail serve store`` owns the spools and the config store; each MX host has a data
    directory, an env file, a port and a client certificate of its own, and reaches them only
    through the store channel)."""

    key: str
    name: str
    settings: Settings  # the data host's: spools and config store
    passwords: dict[str, str]
    mx_envs: list[Path]
    mx_dirs: list[Path]
    store_env: Path | None = None
    runs: list[Run] = field(default_factory=list)
    store_cpu_ms: list[float] = field(default_factory=list)  # the store process's part of the CPU, per message
    rspamd_ms: list[float] = field(default_factory=list)  # rspamd's CPU per message (--rspamd)

    @contextlib.contextmanager
    def running(self, logs: Path) -> Iterator[tuple[list[int], list[int]]]:
        """Its processes up: yields the MX ports and the process ids whose CPU counts (store included)."""
        with contextlib.ExitStack() as stack:
            pids = []
            if self.store_env is not None:
                _, pid = stack.enter_context(
                    sealmail_component("store", self.store_env, self.settings.data_dir, logs / f"{self.key}-store.log")
                )
                pids.append(pid)
            ports = []
            for number, (env, data) in enumerate(zip(self.mx_envs, self.mx_dirs, strict=True), 1):
                got, pid = stack.enter_context(sealmail_component("mx", env, data, logs / f"{self.key}-mx{number}.log"))
                ports.append(got["mx"])
                pids.append(pid)
            yield ports, pids


def in_process(base: Path, dns: str, redis_url: str | None, extra: list[str], sieve: bool = False) -> Arrangement:
    env_file, settings, passwords = prepare_sealmail(base, dns, redis_url, extra, sieve)
    name = "Sealmail MX: checks, sealed spool, fsync" + (" + Sieve" if sieve else "")
    return Arrangement(base.name, name, settings, passwords, [env_file], [settings.data_dir])


def through_store(
    base: Path, dns: str, redis_url: str | None, extra: list[str], hosts: int, sieve: bool = False
) -> Arrangement:
    """``hosts`` MX hosts and one data host, on this machine: mutual TLS over loopback."""
    # the data host's config store (aliases, keys and scripts)
    _, settings, passwords = prepare_sealmail(base, dns, redis_url, [], sieve)
    certs = ensure_dev_certificates(base / "tls")
    store_port = free_port()
    common: dict[str, object] = {"SEALMAIL_BIND_ADDRESSES": "127.0.0.1", "SEALMAIL_LOG_LEVEL": "INFO"}
    if redis_url:
        common["SEALMAIL_REDIS_URL"] = redis_url  # one Redis for every host, as in production
    store_env = write_env_file(
        base / "store.env",
        {
            **common,
            "SEALMAIL_DATA_DIR": settings.data_dir,
            "SEALMAIL_TLS_CERT_FILE": certs.cert,
            "SEALMAIL_TLS_KEY_FILE": certs.key,
            "SEALMAIL_STORE_CA_FILE": certs.ca_cert,
            "SEALMAIL_STORE_PORT": store_port,
        },
    )
    envs, dirs = [], []
    for number in range(1, hosts + 1):
        data = base / f"mx{number}"
        data.mkdir(mode=0o700)
        client_cert, client_key = ensure_client_certificate(base / "tls", f"mx{number}")
        values: dict[str, object] = {
            **common,
            "SEALMAIL_DATA_DIR": data,
            "SEALMAIL_MX_PORT": free_port(),
            "SEALMAIL_HOSTNAME": f"mx{number}.{DOMAIN}",
            "SEALMAIL_DNS_SERVERS": dns,
            "SEALMAIL_MX_PROCESSES": os.cpu_count() or 1,  # per host, as the Ansible role sets it
            "SEALMAIL_STORE_URL": f"wss://localhost:{store_port}",
            "SEALMAIL_STORE_CA_FILE": certs.ca_cert,
            "SEALMAIL_STORE_CLIENT_CERT_FILE": client_cert,
            "SEALMAIL_STORE_CLIENT_KEY_FILE": client_key,
            "SEALMAIL_CONFIG_BACKEND": "store",  # aliases and keys from the data host's config store
        }
        for item in extra:
            name, _, value = item.partition("=")
            values[name] = value
        envs.append(write_env_file(data / "sealmail.env", values))
        dirs.append(data)
    name = f"Sealmail {hosts} MX host{'s' if hosts > 1 else ''} -> one store" + (" + Sieve" if sieve else "")
    return Arrangement(base.name, name, settings, passwords, envs, dirs, store_env)


# ---- Postfix -> Dovecot -----------------------------------------------------------------------------
POSTFIX_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def missing_anchor() -> str | None:
    needs = {
        "/usr/sbin/postfix": "postfix",
        "/usr/sbin/dovecot": "dovecot-core",
        "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    }
    absent = sorted({pkg for path, pkg in needs.items() if not os.path.exists(path)})
    if absent:
        return (
            f"the Postfix -> Dovecot anchor needs: apt-get install {' '.join(absent)}\n"
            "  (then stop the system Postfix Debian starts and keep it off: postfix stop; update-rc.d postfix disable)"
        )
    if os.geteuid() != 0:
        return "the Postfix -> Dovecot anchor needs root (Postfix and Dovecot switch to their own users)"
    return None


@contextlib.contextmanager
def postfix_dovecot(base: Path, milter: str | None = None) -> Iterator[tuple[int, list[Path], list[int]]]:
    """Postfix on a loopback port, delivering over LMTP to Dovecot; with ``milter`` ("host:port"),
    asking that milter (rspamd's proxy) about each message before its reply to DATA.

    Yields (SMTP port, Maildir new/ dirs, the process ids of Postfix's master and of Dovecot).
    """
    base.mkdir(mode=0o755)
    smtp_port, lmtp_port = free_port(), free_port()
    dovecot = base / "dovecot"
    mail = base / "mail"
    for path in (dovecot / "run", dovecot / "state", mail):
        path.mkdir(parents=True)
    shutil.chown(mail, "nobody", "nogroup")
    (dovecot / "dovecot.conf").write_text(
        f"""base_dir = {dovecot}/run
state_dir = {dovecot}/state
log_path = {dovecot}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:{mail}/%n/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    conf, queue, data = base / "postfix", base / "postfix-queue", base / "postfix-data"
    for path in (conf, queue, data):
        path.mkdir()
    shutil.chown(data, "postfix")
    users = ", ".join(f"{u}@{DOMAIN}=x" for u in MAILBOXES)
    (conf / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = inline:{{ {users} }}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
recipient_delimiter = +
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
biff = no
smtputf8_enable = yes
"""
        + (_milter_config(milter) if milter else "")
    )
    (conf / "master.cf").write_text(f"127.0.0.1:{smtp_port} inet n - n - - smtpd\n" + POSTFIX_SERVICES)
    dovecot_proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(dovecot / "dovecot.conf")])
    started = False
    try:
        result = subprocess.run(["postfix", "-c", str(conf), "start"], capture_output=True, text=True, check=False)
        started = result.returncode == 0
        if not started:
            log = (base / "postfix.log").read_text() if (base / "postfix.log").exists() else ""
            raise RuntimeError(f"postfix did not start: {result.stderr}{log[-2000:]}")
        for port in (smtp_port, lmtp_port):
            _wait_port(port)
        master = int((queue / "pid" / "master.pid").read_text().split()[0])
        yield smtp_port, [mail / u / "Maildir" / "new" for u in MAILBOXES], [master, dovecot_proc.pid]
    finally:
        if started:
            subprocess.run(["postfix", "-c", str(conf), "stop"], capture_output=True, check=False)
        from smtpkit import stop

        stop(dovecot_proc)


def _milter_config(address: str) -> str:
    """Postfix asking rspamd's proxy as rspamd's documentation has it (the macros it reads). When the
    milter cannot answer, Postfix's default stands: tempfail (451), as Sealmail's MX does here
    (``SEALMAIL_RSPAMD_UNAVAILABLE=tempfail``), so no message is ever taken unscanned — a run where
    rspamd falls behind fails loudly instead of measuring mail that skipped the scan."""
    return f"""smtpd_milters = inet:{address}
non_smtpd_milters =
milter_protocol = 6
milter_default_action = tempfail
milter_mail_macros = i {{mail_addr}} {{client_addr}} {{client_name}} {{auth_authen}}
"""


def _wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.05)


def _flagged(dirs: list[Path]) -> int:
    """Delivered messages that carry the milter's ``X-Spam: Yes`` (rspamd's add header band)."""
    total = 0
    for d in dirs:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(d):
                with open(entry.path, "rb") as message:
                    head = message.read(8192).replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
                total += b"\nX-Spam: Yes\n" in b"\n" + head + b"\n"
    return total


def _files(dirs: list[Path]) -> int:
    total = 0
    for d in dirs:
        with contextlib.suppress(FileNotFoundError):
            total += sum(1 for _ in os.scandir(d))
    return total


def run_postfix(
    base: Path, warm_up: list[Mail], mails: list[Mail], connections: int, scanner: Scanner | None = None
) -> tuple[Run, float, float | None]:
    """One Postfix run: (the run, seconds until the last message was in its Maildir, rspamd's CPU ms
    per message when ``scanner`` is on: Postfix then asks its milter proxy)."""
    milter = scanner.local.milter_address if scanner else None
    with postfix_dovecot(base, milter) as (port, maildirs, pids):
        scanned = scanner.count() if scanner else 0
        asyncio.run(blast(port, warm_up, 2))  # warm up: processes spawned, Maildirs created
        deadline = time.monotonic() + 60
        while _files(maildirs) < len(warm_up) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = _files(maildirs)
        cpu = sum(cpu_seconds(pid) for pid in pids)
        rspamd_cpu = scanner.cpu() if scanner else 0.0
        start = time.perf_counter()
        run = asyncio.run(blast(port, mails, connections))
        deadline = time.monotonic() + 600
        while _files(maildirs) < before + len(mails):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Dovecot has {_files(maildirs) - before} of {len(mails)} messages after 10 min")
            time.sleep(0.02)
        end_to_end = time.perf_counter() - start
        # CPU of every Postfix and Dovecot process until the last message is in its Maildir.
        run.cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
        rspamd_ms = None
        if scanner:
            rspamd_ms = 1000 * (scanner.cpu() - rspamd_cpu) / len(mails)
            scanner.check(f"Postfix ({base.name})", scanned, len(warm_up) + len(mails))
            scanner.checks.append(
                f"  of them in Dovecot's Maildirs with the milter's X-Spam: Yes: {_flagged(maildirs)}"
            )
    return run, end_to_end, rspamd_ms


# ---- rspamd (--rspamd) ------------------------------------------------------------------------------
@dataclass
class Scanner:
    """The one private rspamd both MTAs ask: Sealmail's MX its normal worker over HTTP (``/checkv2``),
    Postfix its proxy worker in milter mode, which scans each message itself. Around every run it
    checks on the controller's count that each message sent was scanned once, and measures its CPU."""

    local: LocalRspamd
    checks: list[str] = field(default_factory=list)
    mismatches: int = 0

    def count(self) -> int:
        return self.local.scanned()

    def cpu(self) -> float:
        """CPU seconds of rspamd's main process and its workers so far."""
        assert self.local.proc is not None
        return float(cpu_seconds(self.local.proc.pid))

    def check(self, what: str, before: int, sent: int) -> None:
        got = self.count() - before
        line = f"rspamd scanned {got} of the {sent} messages sent to {what}"
        if got != sent:
            line += ": MISMATCH, every message must be scanned once"
            self.mismatches += 1
        self.checks.append(line)
        print(line, flush=True)


@contextlib.contextmanager
def rspamd_for(base: Path, dns: str, workers: int) -> Iterator[Scanner]:
    """rspamd as ``sealmail dev`` runs it (``spam.localrspamd``: Debian's config, offline), asking the
    bench's DNS server, with a Redis of its own for Bayes, ``workers`` processes for each of the
    normal worker and the milter proxy."""
    where = base / "rspamd"
    where.mkdir()
    with redis_server(where) as redis_url:
        redis = redis_url.removeprefix("redis://").split("/", 1)[0] if redis_url else None
        # Every client here is on loopback, which rspamd would let pass unchecked; an MX's clients are
        # not: check_local has it check them as remote ones (SPF, DKIM, DMARC, HELO and host name).
        local = LocalRspamd(
            where / "rspamd",
            default_cache_dir(),
            redis=redis,
            dns=dns,
            milter=True,
            workers=workers,
            check_local=True,
        )
        took = local.start(timeout=240)  # a cold hyperscan cache compiles for a while
        try:
            print(f"rspamd answered {took:.1f} s after its start ({workers} worker(s) each)", flush=True)
            yield Scanner(local)
        finally:
            local.stop()


# ---- main -----------------------------------------------------------------------------------------
NAME = 52  # width of the first column


def row(name: str, run: Run, end_to_end: float | None = None, rspamd_ms: float | None = None) -> str:
    e2e = f"{len(run.latencies) / end_to_end:>10.0f}" if end_to_end else f"{'':>10}"
    cpu = f"{run.cpu_ms:>8.2f}" if run.cpu_ms is not None else f"{'':>8}"
    scan = f" {rspamd_ms:>8.2f}" if rspamd_ms is not None else ""
    return f"{name:<{NAME}} {run.rate:>9.0f} {e2e} {run.percentile(50):>8.1f} {run.percentile(99):>8.1f} {cpu}{scan}"


def arrangements_for(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(key, MX hosts through the store; 0: one host, in-process) for each Sealmail arrangement to run."""
    plan = [("inprocess", 0)]
    if args.mx_hosts >= 1:
        plan.append(("store1", 1))
    if args.mx_hosts > 1:
        plan.append((f"store{args.mx_hosts}", args.mx_hosts))
    return plan


def summary(
    arrangements: list[Arrangement], theirs_runs: list[tuple[Run, float, float | None]], theirs: str = "Postfix"
) -> None:
    medians = {}
    for arrangement in arrangements:
        runs = arrangement.runs
        medians[arrangement.key] = (
            statistics.median([r.rate for r in runs]),
            statistics.median([r.percentile(50) for r in runs]),
            statistics.median([r.percentile(99) for r in runs]),
        )
        rate, p50, p99 = medians[arrangement.key]
        store = ""
        if arrangement.store_cpu_ms:
            store = f"; of the CPU per message, the store's {statistics.median(arrangement.store_cpu_ms):.2f} ms"
        if arrangement.rspamd_ms:
            store += f"; rspamd's CPU {statistics.median(arrangement.rspamd_ms):.2f} ms per message"
        print(f"median over rounds: {arrangement.name}: {rate:.0f} msg/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms{store}")
    if theirs_runs:
        theirs_rate = statistics.median([r.rate for r, _, _ in theirs_runs])
        theirs_e2e = statistics.median([len(r.latencies) / e2e for r, e2e, _ in theirs_runs])
        theirs_p50 = statistics.median([r.percentile(50) for r, _, _ in theirs_runs])
        theirs_p99 = statistics.median([r.percentile(99) for r, _, _ in theirs_runs])
        scans = [ms for _, _, ms in theirs_runs if ms is not None]
        scan = f"; rspamd's CPU {statistics.median(scans):.2f} ms per message" if scans else ""
        print(
            f"median over rounds: {theirs} {theirs_rate:.0f} msg/s ({theirs_e2e:.0f} end to end),"
            f" p50 {theirs_p50:.1f} ms, p99 {theirs_p99:.1f} ms{scan}"
        )
        for arrangement in arrangements:
            rate, _, p99 = medians[arrangement.key]
            # Sealmail's 250 follows the fsync in the spool: its accepted rate is its end-to-end rate.
            print(
                f"{arrangement.name} / {theirs}: accepted {rate / theirs_rate:.2f}x, "
                f"end to end {rate / theirs_e2e:.2f}x, p99 {p99 / theirs_p99:.2f}x"
            )
    one = medians.get("store1")
    for key, (rate, _, p99) in medians.items():
        if key.startswith("store") and key != "store1" and one is not None:
            print(
                f"{key[5:]} MX hosts / 1 MX host (both through the store): {rate / one[0]:.2f}x rate, {p99 / one[2]:.2f}x p99"
            )
    if one is not None:
        rate, _, p99 = medians["inprocess"]
        print(f"1 MX host through the store / in-process: {one[0] / rate:.2f}x rate, {one[2] / p99:.2f}x p99")


def postfix_name(scanner: Scanner | None) -> str:
    return "Postfix + rspamd milter -> Dovecot LMTP" if scanner else "Postfix -> Dovecot LMTP (Maildir)"


def run_sealmail(
    arrangement: Arrangement,
    logs: Path,
    warm_up: list[Mail],
    batch: list[Mail],
    connections: int,
    scanner: Scanner | None,
) -> None:
    """One run of ``arrangement`` (after ``warm_up``, unmeasured); its results go to ``arrangement``."""
    with arrangement.running(logs) as (ports, pids):
        scanned = scanner.count() if scanner else 0
        if warm_up:
            asyncio.run(blast(ports, warm_up, max(2, len(ports))))
        store_cpu = cpu_seconds(pids[0]) if arrangement.store_env is not None else 0.0
        rspamd_cpu = scanner.cpu() if scanner else 0.0
        run = asyncio.run(blast(ports, batch, connections, server_pid=pids))
        if arrangement.store_env is not None:
            store_cpu = cpu_seconds(pids[0]) - store_cpu
            arrangement.store_cpu_ms.append(1000 * store_cpu / len(batch))
        if scanner:
            arrangement.rspamd_ms.append(1000 * (scanner.cpu() - rspamd_cpu) / len(batch))
            scanner.check(f"{arrangement.key} #{len(arrangement.runs) + 1}", scanned, len(warm_up) + len(batch))
    arrangement.runs.append(run)


def run_rounds(
    args: argparse.Namespace,
    base: Path,
    dns: str,
    rounds: list[list[Mail]],
    warm_up: list[Mail],
    results: list[str],
    arrangements: list[Arrangement],
    theirs_runs: list[tuple[Run, float, float | None]],
    scanner: Scanner | None = None,
) -> list[str]:
    """Each round: every Sealmail arrangement, then Postfix, on the same messages; then the spools are
    checked. With ``scanner`` every one of them asks that rspamd about each message."""
    verdicts = []
    extra = list(args.set)
    if scanner:
        # As Postfix's milter_default_action: no answer from rspamd is a 451, never mail unscanned.
        extra += [f"SEALMAIL_RSPAMD_URL={scanner.local.url}", "SEALMAIL_RSPAMD_UNAVAILABLE=tempfail"]
    with contextlib.ExitStack() as stack:
        # Each arrangement has its own data, and its own Redis: the same messages again would be
        # repeats to a shared one's dedup keys, stored once and answered quicker.
        for key, hosts in arrangements_for(args):
            where = base / key
            where.mkdir()
            redis_url = stack.enter_context(redis_server(where))
            if hosts == 0:
                arrangements.append(in_process(where, dns, redis_url, extra, args.sieve))
            else:
                arrangements.append(through_store(where, dns, redis_url, extra, hosts, args.sieve))
            if scanner:
                arrangements[-1].name += " + rspamd"
        for number, batch in enumerate(rounds, 1):
            for arrangement in arrangements:
                # As for Postfix, the first round warms up: caches, threads (one session per MX host).
                run_sealmail(arrangement, base, warm_up if number == 1 else [], batch, args.connections, scanner)
                rspamd_ms = arrangement.rspamd_ms[-1] if scanner else None
                results.append(row(f"{arrangement.name} #{number}", arrangement.runs[-1], rspamd_ms=rspamd_ms))
                print(results[-1], f"({load()})", flush=True)
            if not args.no_postfix:
                theirs_runs.append(run_postfix(base / f"postfix{number}", warm_up, batch, args.connections, scanner))
                run, end_to_end, rspamd_ms = theirs_runs[-1]
                results.append(row(f"{postfix_name(scanner)} #{number}", run, end_to_end, rspamd_ms))
                print(results[-1], f"({load()})", flush=True)
        for arrangement in arrangements:
            verdicts.append(
                f"{arrangement.name}: {check_sealmail(arrangement.settings, arrangement.passwords, WARM_UP + len(rounds) * len(rounds[0]), scanner is not None, args.sieve)}"
            )
            if scanner:
                verdicts.append(f"{arrangement.name}: {_unanswered(base, arrangement.key)}")
    return verdicts


def _unanswered(logs: Path, key: str) -> str:
    """The MX logs a scan rspamd did not answer (and then defers the message): there must be none.
    It logs each verdict too (queue ids only): how many went to Junk."""
    text = "".join(path.read_text() for path in logs.glob(f"{key}-mx*.log"))
    count = text.count("gave no answer")
    if count:
        raise RuntimeError(f"rspamd did not answer the MX {count} time(s): see {logs}/{key}-mx*.log")
    return f"rspamd answered every scan the MX asked for; {text.count(' -> spam')} to Junk, {text.count(' -> ham')} to INBOX"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--dns-ttl", type=int, default=300, help="TTL of the DNS answers (0: no caching)")
    parser.add_argument("--no-postfix", action="store_true", help="skip the Postfix -> Dovecot anchor")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the counting aiosmtpd handler")
    parser.add_argument("--one-mailbox", action="store_true", help="every message to one alias (the hot mailbox)")
    parser.add_argument("--rounds", type=int, default=1, help="Sealmail then Postfix, this many times")
    parser.add_argument(
        "--mx-hosts",
        type=int,
        default=0,
        help="also MX hosts reaching the mailboxes through one `sealmail serve store`: 1 of them, and this many",
    )
    parser.add_argument(
        "--rspamd",
        action="store_true",
        help="scan every message with one private rspamd: Sealmail's MX asks its normal worker, Postfix its milter",
    )
    parser.add_argument(
        "--rspamd-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes of rspamd's normal worker and of its milter proxy, each (default: one per core)",
    )
    parser.add_argument(
        "--sieve", action="store_true", help="every mailbox runs an active 20-rule Sieve script at delivery"
    )
    parser.add_argument("--set", action="append", default=[], metavar="SEALMAIL_X=V", help="extra MX setting")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.rspamd and rspamd_binary() is None:
        sys.exit("--rspamd needs rspamd: apt-get install rspamd")
    if shutil.which("dnsmasq") is None:
        sys.exit("bench/smtp_inbound.py needs dnsmasq: scripts/system-deps test (or apt-get install dnsmasq-base)")
    anchor_problem = None if args.no_postfix else missing_anchor()
    if anchor_problem:
        sys.exit(anchor_problem + "\n  or run with --no-postfix")

    print(f"start: {load()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="sealmail-bench-smtp-in-", dir=os.environ.get("BENCH_TMP")))
    base.chmod(0o755)
    results: list[str] = []
    arrangements: list[Arrangement] = []
    theirs_runs: list[tuple[Run, float, float | None]] = []
    scanner: Scanner | None = None
    dnsd = None
    try:
        senders = Settings(data_dir=base / "senders")
        dnsd = dns_for(base, senders, args.dns_ttl, client=args.rspamd)
        dnsd.start()
        start = time.perf_counter()
        total = args.messages * args.rounds
        everything = make_mails(total + WARM_UP, senders.data_dir, args.one_mailbox)
        # Distinct warm-up messages: Sealmail would rightly take a repeat for a retry and store it once.
        warm_up = everything[total:]
        rounds = [everything[i * args.messages : (i + 1) * args.messages] for i in range(args.rounds)]
        mails = rounds[0]
        size = sum(len(m.data) for m in mails) / len(mails)
        print(f"{total} messages, {size:.0f} octets on average, signed in {time.perf_counter() - start:.1f} s")

        if not args.no_ceiling:
            with counting_sink(free_port()) as sink:
                ceiling = asyncio.run(blast(sink.port, mails, args.connections, server_pid=sink.pid))
            results.append(row("aiosmtpd, counting handler (ceiling)", ceiling))
            print(results[-1], flush=True)

        with contextlib.ExitStack() as stack:
            if args.rspamd:
                scanner = stack.enter_context(rspamd_for(base, dnsd.address, args.rspamd_workers))
            verdicts = run_rounds(
                args, base, dnsd.address, rounds, warm_up, results, arrangements, theirs_runs, scanner
            )
    finally:
        if dnsd is not None:
            dnsd.stop()
        shutil.rmtree(base, ignore_errors=True)

    report(args, len(mails), results, verdicts, arrangements, theirs_runs, scanner)


def report(
    args: argparse.Namespace,
    count: int,
    results: list[str],
    verdicts: list[str],
    arrangements: list[Arrangement],
    theirs_runs: list[tuple[Run, float, float | None]],
    scanner: Scanner | None,
) -> None:
    recipients = "one mailbox (user0)" if args.one_mailbox else f"{len(MAILBOXES)} mailboxes (Zipf)"
    print(
        f"\n{count} x ~4 KB messages to {recipients} over {args.connections} connections, {args.rounds} round(s);"
        " latency: end of DATA to 250"
    )
    rspamd = (f" {'rspamd':>8}", f" {'CPU ms':>8}") if scanner else ("", "")
    print(f"{'':<{NAME}} {'accepted':>9} {'end to end':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>8}{rspamd[0]}")
    print(f"{'':<{NAME}} {'msg/s':>9} {'msg/s':>10} {'':>8} {'':>8} {'per msg':>8}{rspamd[1]}")
    for line in results:
        print(line)
    if shutil.which("redis-server") is None:
        print("(no redis-server here: Sealmail ran with its in-process bus)")
    print()
    for verdict in verdicts:
        print(verdict)
    if scanner:
        for line in scanner.checks:
            print(line)
    print("Sealmail's 250 means the sealed message is fsynced in its spool (on the data host through the store):")
    print("accepted is end to end. CPU counts the MX processes and, through the store, the store process too.")
    if scanner:
        print("rspamd's CPU (the last column) counts its main process and workers, per message, during each run.")
    summary(arrangements, theirs_runs, postfix_name(scanner))
    print(f"end: {load()}")
    if scanner and scanner.mismatches:
        sys.exit(f"{scanner.mismatches} run(s) where rspamd did not scan every message once: see above")


if __name__ == "__main__":
    main()
