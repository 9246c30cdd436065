"""POP3 benchmark: Sealmail beside Dovecot's POP3 server on the same 10,000 messages.

    .venv/bin/python bench/pop3.py [--messages 10000] [--rounds 7]

Both servers run as their own processes on loopback with TLS (implicit, the 995 listener) and the
same Argon2id password cost (Sealmail's default settings: t=3, 32 MiB, one lane; Dovecot verifies
the identical PHC string through its ARGON2ID scheme), so a login costs both one equal key
derivation. Sealmail's mailbox is the encrypted store; Dovecot's is a Maildir of the same messages.
One small client (raw lines over TLS, no parsing) runs the same session against each: login
(connect, TLS, USER/PASS), STAT, LIST of every message, RETR of 50 messages spread over the
mailbox. Each step's median over the rounds is printed side by side with the ratio
Sealmail / Dovecot (lower is better). A warm-up session per server comes first (Dovecot builds its
index then). Dovecot runs its mail processes as ``nobody``, so this needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.crypto.passwords import hash_password
from sealmail.services import aliases, credentials, domains
from sealmail.settings import Settings
from sealmail.store.mailstore import MailStore
from sealmail.tls.devca import DevCertificates, ensure_dev_certificates

from corpus import corpus

ADDRESS = "demo@example.test"
TERMINATOR = b"\r\n.\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """Just enough POP3 to time the server: send a command, read until the reply is complete."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""
        self.reply(multiline=False)  # the greeting

    def reply(self, *, multiline: bool) -> bytes:
        while True:
            if multiline:
                if self.buffer.startswith(b"-ERR") and b"\r\n" in self.buffer:
                    break
                if self.buffer.endswith(TERMINATOR):
                    break
            elif b"\r\n" in self.buffer:
                break
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        if not data.startswith(b"+OK"):
            raise RuntimeError(f"server said {data[:200]!r}")
        return data

    def command(self, line: str, *, multiline: bool = False) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply(multiline=multiline)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.command("QUIT")
        self.sock.close()


def session(port: int, context: ssl.SSLContext, password: str, count: int, *, utf8: bool = False) -> dict[str, float]:
    """One timed session: the seconds each step took."""
    times = {}
    start = time.perf_counter()
    client = Client(port, context)
    if utf8:
        client.command("UTF8")
    client.command(f"USER {ADDRESS}")
    client.command(f"PASS {password}")
    times["login (connect, TLS, USER/PASS)"] = time.perf_counter() - start
    start = time.perf_counter()
    stat = client.command("STAT").split()
    times["STAT"] = time.perf_counter() - start
    assert int(stat[1]) == count, stat
    start = time.perf_counter()
    listing = client.command("LIST", multiline=True)
    times[f"LIST ({count} messages)"] = time.perf_counter() - start
    assert listing.count(b"\r\n") == count + 2
    step = max(1, count // 50)
    numbers = list(range(1, count + 1, step))[:50]
    start = time.perf_counter()
    octets = 0
    for n in numbers:
        octets += len(client.command(f"RETR {n}", multiline=True))
    times[f"RETR x{len(numbers)}"] = time.perf_counter() - start
    client.close()
    times["_octets"] = octets
    return times


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


# ---- Sealmail -------------------------------------------------------------------------------------
def prepare_sealmail(base: Path, messages: list[bytes], certs: DevCertificates) -> tuple[Settings, str]:
    settings = Settings(data_dir=base / "sealmail", tls_cert_file=certs.cert, tls_key_file=certs.key)
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        domains.add_domain(store, "example.test")
        aliases.add_alias(store, ADDRESS)
        password = credentials.set_password(store, settings, ADDRESS)
        unlocked = credentials.unlock(store, settings, ADDRESS, password)
    finally:
        store.close()
    box = MailStore(settings.data_dir).open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        for i in range(0, len(messages), 500):
            box.append_many("INBOX", [(raw, (), None) for raw in messages[i : i + 500]])
    finally:
        box.close()
    return settings, password


@contextlib.contextmanager
def sealmail_server(settings: Settings) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    env.update(
        {
            "SEALMAIL_DATA_DIR": str(settings.data_dir),
            "SEALMAIL_TLS_CERT_FILE": str(settings.tls_cert_file),
            "SEALMAIL_TLS_KEY_FILE": str(settings.tls_key_file),
            "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
            "SEALMAIL_POP3S_PORT": str(port),
            "SEALMAIL_POP3_PORT": "0",
            "SEALMAIL_LOG_LEVEL": "WARNING",
        }
    )
    proc = subprocess.Popen([sys.executable, "-m", "sealmail", "serve", "pop3"], env=env)
    try:
        marker = settings.run_dir / "pop3.json"
        deadline = time.monotonic() + 30
        while not (marker.exists() and json.loads(marker.read_text()).get("pid") == proc.pid):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sealmail serve pop3 did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# ---- Dovecot --------------------------------------------------------------------------------------
def dovecot_config(base: Path, port: int, certs: DevCertificates) -> str:
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{certs.cert}
ssl_key = <{certs.key}
auth_mechanisms = plain
mail_location = maildir:{base}/home/Maildir
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {base}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/home
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@contextlib.contextmanager
def dovecot_server(base: Path, messages: list[bytes], password_hash: str, certs: DevCertificates) -> Iterator[int]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        raise RuntimeError("dovecot is not installed (scripts/system-deps test installs dovecot-pop3d)")
    base.mkdir(mode=0o755)
    maildir = base / "home" / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, raw in enumerate(messages):
        # S= and W= (the CRLF size) in the name, as Dovecot writes them, so it need not read every file.
        (maildir / "cur" / f"{1700000000 + i}.M{i}P1.bench,S={len(raw)},W={len(raw)}:2,").write_bytes(raw)
    for sub in ("run", "state"):
        (base / sub).mkdir()
    for path in (base / "home", *(base / "home").rglob("*")):
        shutil.chown(path, "nobody", "nogroup")
    (base / "passwd").write_text(f"{ADDRESS}:{{ARGON2ID}}{password_hash}\n")
    (base / "passwd").chmod(0o644)
    port = free_port()
    (base / "dovecot.conf").write_text(dovecot_config(base, port, certs))
    proc = subprocess.Popen([binary, "-F", "-c", str(base / "dovecot.conf")])
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
                raise RuntimeError(f"dovecot did not start: {log}")
            time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/pop3.py needs root: Dovecot runs its mail processes as nobody")
    messages = corpus(args.messages)
    print(
        f"corpus: {len(messages)} messages, {sum(map(len, messages)) / 1e6:.1f} MB, "
        f"{sum(1 for m in messages if b'multipart/mixed' in m)} with attachments",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="sealmail-bench-pop3-", dir=os.environ.get("BENCH_TMP")))
    try:
        base.chmod(0o755)
        certs = ensure_dev_certificates(base / "tls")
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        start = time.perf_counter()
        settings, password = prepare_sealmail(base, messages, certs)
        print(f"  sealmail: mailbox filled in {time.perf_counter() - start:.1f} s", flush=True)
        argon2 = (
            f"t={settings.argon2_time_cost}, {settings.argon2_memory_kib // 1024} MiB, p={settings.argon2_parallelism}"
        )
        count = len(messages)
        with (
            sealmail_server(settings) as ours_port,
            dovecot_server(base / "dovecot", messages, hash_password(settings, password), certs) as theirs_port,
        ):
            ports = {"sealmail": ours_port, "dovecot": theirs_port}
            # The first session after start: Dovecot builds its index files then; Sealmail keeps no cache.
            first = {name: session(port, context, password, count) for name, port in ports.items()}
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
            for _ in range(args.rounds):  # alternating, so load from elsewhere on the machine hits both alike
                for name, port in ports.items():
                    runs[name].append(session(port, context, password, count))
            utf8 = medians([session(ours_port, context, password, count, utf8=True) for _ in range(args.rounds)])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ours, theirs = medians(runs["sealmail"]), medians(runs["dovecot"])

    version = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"\nPOP3 over TLS, medians of {args.rounds} sessions; both servers check an Argon2id password ({argon2})")
    print(f"Dovecot {version}: Maildir; Sealmail: encrypted SQLCipher mailbox\n")
    print(f"{'step':<36} {'sealmail ms':>12} {'dovecot ms':>11} {'ratio':>7}")
    steps = [k for k in ours if not k.startswith("_")]
    for key in steps:
        print(f"{key:<36} {1000 * ours[key]:>12.1f} {1000 * theirs[key]:>11.1f} {ours[key] / theirs[key]:>7.2f}")
    total_ours, total_theirs = sum(ours[k] for k in steps), sum(theirs[k] for k in steps)
    print(
        f"{'whole session':<36} {1000 * total_ours:>12.1f} {1000 * total_theirs:>11.1f} {total_ours / total_theirs:>7.2f}"
    )
    login = steps[0]
    a, b = first["sealmail"][login], first["dovecot"][login]
    print(f"{'first login after start':<36} {1000 * a:>12.1f} {1000 * b:>11.1f} {a / b:>7.2f}")
    print("\nSealmail after the UTF8 command (RFC 6856: no header downgrading; Dovecot 2.3 has no UTF8):")
    for key in steps:
        print(f"  {key:<34} {1000 * utf8[key]:>12.1f}")
    eight_bit = sum(1 for m in messages if not m.split(b"\r\n\r\n", 1)[0].isascii())
    print(
        f"\n{eight_bit} of {count} messages have raw UTF-8 in their header: without UTF8, Sealmail sends (and"
        " counts) those headers downgraded to ASCII (RFC 6858); Dovecot sends them as stored."
    )
    print(f"RETR octets per session: sealmail {ours['_octets']:.0f}, dovecot {theirs['_octets']:.0f}")


if __name__ == "__main__":
    main()
