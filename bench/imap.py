"""IMAP benchmark: Sealmail's IMAP server side by side with Debian's Dovecot on the same mailbox.

    .venv/bin/python bench/imap.py [--messages 10000] [--idle 1000] [--runs 5] [--skip-dovecot]
                                   [--store inprocess,remote]

Both servers get the same messages (bench/corpus.py; a third of them \\Seen): Sealmail in its
encrypted store, Dovecot in a Maildir. Both log in with an Argon2id password (Dovecot's passdb
uses the ARGON2ID scheme, and Sealmail the same m=64 MiB, t=3, p=1) over plain TCP on loopback (no TLS on either side, so the numbers compare
the servers and not the TLS stacks). Measured from one client: LOGIN+SELECT, FETCH 1:* (FLAGS
INTERNALDATE RFC822.SIZE ENVELOPE), 50 random full bodies in one UID FETCH, SEARCH TEXT, SEARCH
FROM, SORT (DATE) and THREAD REFERENCES over the whole folder (the first after login, then medians;
40% of the corpus are replies, bench/corpus.py ``threads``), STORE on 100 messages (medians); then N
concurrent IDLE connections: the server's memory
(PSS, all its processes) and how long until every connection has seen a new message (Sealmail: a
delivery through the MX path, the sealed spool and Redis; Dovecot: a file dropped in Maildir/new).
Needs root for Dovecot (its mail processes run as nobody). Prints Sealmail/Dovecot ratios.

``--store`` says how Sealmail's IMAP server reaches the mailboxes, one run per arrangement in the
same invocation (issue 19): ``inprocess`` (one host: it opens the mailbox files itself, the
default) and ``remote`` (a front-end and a data host: the mailboxes and the config store behind
``sealmail serve store``, and ``sealmail serve imap`` with a data directory of its own, reaching
both only through the store's mutual-TLS WebSocket, SEALMAIL_STORE_URL and
SEALMAIL_CONFIG_BACKEND=store, as a front-end host without MongoDB is deployed). "Another host"
is approximated by loopback plus TLS: the hop costs the TLS, the framing and the second process's
work, but no network latency, and both processes share this machine's cores. There is no
``--store-delay-ms``: an honest delay needs ``tc netem`` on a veth pair into a network namespace,
and this machine's kernel has no netem qdisc ("Specified qdisc kind is unknown"). The remote arrangement's IDLE delivery goes through the store too (a
``deliver`` call over the channel), and its memory counts the IMAP and the store processes. With
both arrangements the table adds the ratio remote/in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from corpus import corpus

PASSWORD = "correct horse battery staple 42"
USER = "demo@example.test"
APPENDS = 300  # messages appended one per command


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


# ---- a minimal IMAP client, the same for both servers ---------------------------------------------
class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.n = 0

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        client = cls(reader, writer)
        await reader.readline()
        return client

    async def command(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"b{self.n}".encode()
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            while line.endswith(b"}\r\n"):
                size = int(line[line.rfind(b"{") + 1 : -3].rstrip(b"+"))
                line += await self.reader.readexactly(size) + await self.reader.readline()
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text[:60]}: {line!r}")
                return lines

    async def login(self, user: str, password: str) -> None:
        await self.command(f'LOGIN "{user}" "{password}"')

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(b"z LOGOUT\r\n")
            self.writer.close()
            await self.writer.wait_closed()


@dataclass
class Results:
    times: dict[str, float | None] = field(default_factory=dict)  # seconds
    notes: dict[str, str] = field(default_factory=dict)


async def timed(runs: int, action: Callable[[], Awaitable[object]], res: Results | None = None) -> float | None:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        try:
            await action()
        except RuntimeError as exc:  # the server said NO: report it instead of a number
            if res is None:
                raise
            res.notes[str(exc).split(":")[0]] = f"failed: {str(exc).split(': ', 1)[1].strip()}"
            return None
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def run_suite(
    port: int, count: int, idle: int, runs: int, deliver: Callable[[], None], server_pids: Callable[[], list[int]]
) -> Results:
    res = Results()
    rng = random.Random(7)

    async def login_select() -> None:
        client = await Client.connect(port)
        await client.login(USER, PASSWORD)
        await client.command("SELECT INBOX")
        await client.close()

    await login_select()  # warm up (first open, caches)
    res.times["LOGIN+SELECT"] = await timed(runs, login_select)

    client = await Client.connect(port)
    await client.login(USER, PASSWORD)
    lines = await client.command("SELECT INBOX")
    assert any(b" EXISTS" in line for line in lines)
    await client.command("FETCH 1:* (FLAGS)")  # warm up

    async def fetch_all() -> None:
        lines = await client.command("FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        assert len(lines) == count + 1, (len(lines), lines[-1])

    res.times["FETCH 1:* (... ENVELOPE), first after login"] = await timed(1, fetch_all, res)
    res.times["FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"] = await timed(runs, fetch_all, res)

    async def fetch_fast() -> None:
        lines = await client.command("FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)")
        assert len(lines) == count + 1

    res.times["FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)"] = await timed(runs, fetch_fast)

    async def bodies() -> None:
        uids = ",".join(str(u) for u in rng.sample(range(1, count + 1), 50))
        lines = await client.command(f"UID FETCH {uids} (BODY.PEEK[])")
        assert len(lines) == 51

    res.times["50 random full bodies"] = await timed(runs, bodies)

    async def search_text() -> None:
        await client.command("SEARCH TEXT conference")

    res.times["SEARCH TEXT"] = await timed(runs, search_text)

    async def search_from() -> None:
        await client.command("SEARCH FROM grace")

    res.times["SEARCH FROM"] = await timed(runs, search_from)

    async def sort_date() -> None:
        lines = await client.command("SORT (DATE) UTF-8 ALL")
        assert lines[0].startswith(b"* SORT ") and lines[0].count(b" ") == count + 1, lines[0][:80]

    res.times["SORT (DATE), first"] = await timed(1, sort_date, res)
    res.times["SORT (DATE)"] = await timed(runs, sort_date, res)

    async def thread_references() -> None:
        lines = await client.command("THREAD REFERENCES UTF-8 ALL")
        assert lines[0].startswith(b"* THREAD (") and lines[0].count(b"(") >= count // 2, lines[0][:80]

    res.times["THREAD REFERENCES, first"] = await timed(1, thread_references, res)
    res.times["THREAD REFERENCES"] = await timed(runs, thread_references, res)
    flip = [False]

    async def store() -> None:
        flip[0] = not flip[0]
        lines = await client.command(f"STORE 1:100 {'+' if flip[0] else '-'}FLAGS (\\Flagged)")
        assert len(lines) == 101

    res.times["STORE on 100 messages"] = await timed(runs, store)

    # APPEND, one message per command as a client saving drafts and sent mail does; each must be
    # durable before its OK (both servers fsync). Into a folder of its own, so INBOX stays as it was.
    await client.command("CREATE Appended")
    appended = corpus(APPENDS, seed=17)
    took = []
    started = time.perf_counter()
    for raw in appended:
        t0 = time.perf_counter()
        await client.command(f"APPEND Appended {{{len(raw)}+}}\r\n" + raw.decode())
        took.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    took.sort()
    res.times["APPEND one message, median"] = took[len(took) // 2]
    res.times["APPEND one message, p99"] = took[int(len(took) * 0.99)]
    res.notes["APPEND"] = f"{APPENDS} messages one by one: {APPENDS / elapsed:.0f} msg/s"
    await client.close()

    if idle:
        await asyncio.sleep(1)
        before = pss_kib(server_pids())
        clients: list[Client] = []
        # Sealmail checks at most 5 passwords of one account at once (net.limits: LimitPolicy.per_account);
        # further logins wait for them and are refused after 10 s. Opening 40 at a time on a busy
        # machine ran into that ("NO [UNAVAILABLE]"), so both servers get 5 at a time.
        gate = asyncio.Semaphore(5)

        async def open_idle() -> None:
            async with gate:
                c = await Client.connect(port)
                await c.login(USER, PASSWORD)
                await c.command("SELECT INBOX")
                c.writer.write(b"i IDLE\r\n")
                assert (await c.reader.readline()).startswith(b"+")
                clients.append(c)

        started = time.perf_counter()
        await asyncio.gather(*(open_idle() for _ in range(idle)))
        res.notes["IDLE connections opened in"] = f"{time.perf_counter() - started:.1f} s"
        await asyncio.sleep(2)
        after = pss_kib(server_pids())
        res.times["IDLE memory total (MiB)"] = after / 1024
        res.times["IDLE memory per connection (KiB)"] = (after - before) / idle
        heard: list[float] = []

        async def wait_exists(c: Client, t0: float) -> None:
            while True:
                line = await c.reader.readline()
                if not line:
                    return
                if line.endswith(b" EXISTS\r\n"):
                    heard.append(time.perf_counter() - t0)
                    return

        t0 = time.perf_counter()
        waiters = [asyncio.create_task(wait_exists(c, t0)) for c in clients]
        await asyncio.get_running_loop().run_in_executor(None, deliver)
        _, pending = await asyncio.wait(waiters, timeout=40)
        for task in pending:
            task.cancel()
        res.times["IDLE: all notified (s)"] = max(heard) if len(heard) == idle else float("inf")
        res.notes["IDLE notified"] = f"{len(heard)}/{idle} within 40 s; median {statistics.median(heard or [0]):.3f} s"
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return res


# ---- Sealmail -------------------------------------------------------------------------------------
STORES = ("inprocess", "remote")


def run_sealmail(base: Path, messages: list[bytes], args: argparse.Namespace, arrangement: str) -> Results:
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.services import aliases, credentials, domains
    from sealmail.settings import Settings, settings_to_env
    from sealmail.store import events as ev
    from sealmail.store.mailstore import MailStore
    from sealmail.store.remote import RemoteMailStore, client_tls
    from sealmail.tls.devca import ensure_client_certificate, ensure_dev_certificates

    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=base,
    )
    server = None
    store_server = None
    try:
        wait_port(redis_port, redis, "redis-server")
        certs = ensure_dev_certificates(base / "tls")
        port = free_port()
        settings = Settings(
            data_dir=base / "data",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            tls_cert_file=certs.cert,
            tls_key_file=certs.key,
            bind_addresses=["127.0.0.1"],
            imap_port=port,
            imaps_port=free_port(),
            imap_plaintext_login=True,  # the comparison runs without TLS on both sides
            imap_max_connections_per_ip=args.idle + 100,
            # The same Argon2id cost as Dovecot's ARGON2ID scheme (doveadm pw: m=65536, t=3, p=1).
            argon2_time_cost=3,
            argon2_memory_kib=65536,
            argon2_parallelism=1,
            log_level="WARNING",
        )
        config = SQLiteConfigStore(settings.config_db_path)
        domains.add_domain(config, "example.test")
        alias = aliases.add_alias(config, USER)
        credentials.set_password(config, settings, USER, new_password=PASSWORD)
        credential = config.get_credential(alias.id)
        assert credential is not None and credential.mailbox_id and credential.public_key
        mailbox_id, public_key = credential.mailbox_id, credential.public_key
        unlocked = credentials.unlock(config, settings, USER, PASSWORD)
        config.close()
        store = MailStore(settings.data_dir)
        box = store.open_sync(mailbox_id, unlocked.secrets.mailbox_key)
        start = datetime(2025, 1, 1, tzinfo=UTC)
        for i in range(0, len(messages), 1000):
            box.append_many(
                "INBOX",
                [
                    (raw, ("\\Seen",) if (i + j) % 3 == 0 else (), start + timedelta(minutes=37 * (i + j)))
                    for j, raw in enumerate(messages[i : i + 1000])
                ],
            )
        box.close()
        if arrangement == "remote":
            # The data host: `sealmail serve store` owns data/ (mailboxes, spools, config store), mutual
            # TLS on loopback. The front-end: `sealmail serve imap` with a data directory of its own,
            # reaching mailboxes and config only through the store channel.
            client_cert, client_key = ensure_client_certificate(base / "tls")
            store_port = free_port()
            store_env = {**os.environ, **settings_to_env(settings)}
            store_env.update({"SEALMAIL_STORE_CA_FILE": str(certs.ca_cert), "SEALMAIL_STORE_PORT": str(store_port)})
            store_server = subprocess.Popen([sys.executable, "-m", "sealmail", "serve", "store"], env=store_env)
            wait_port(store_port, store_server, "sealmail serve store")
            (base / "frontend").mkdir(mode=0o700)
            settings = settings.model_copy(
                update={
                    "data_dir": base / "frontend",
                    "config_backend": "store",
                    "store_url": f"wss://localhost:{store_port}",
                    "store_ca_file": certs.ca_cert,
                    "store_client_cert_file": client_cert,
                    "store_client_key_file": client_key,
                }
            )
        env = {**os.environ, **settings_to_env(settings)}
        server = subprocess.Popen([sys.executable, "-m", "sealmail", "serve", "imap"], env=env)
        wait_port(port, server, "sealmail serve imap")

        def deliver() -> None:
            async def go() -> None:
                if settings.store_url is not None:  # through the data host, as a front-end MX hands mail over
                    assert settings.store_ca_file and settings.store_client_cert_file and settings.store_client_key_file
                    tls = client_tls(
                        settings.store_ca_file, settings.store_client_cert_file, settings.store_client_key_file
                    )
                    remote = RemoteMailStore(settings.store_url, tls)
                    await remote.deliver_async(mailbox_id, public_key, corpus(1, seed=99)[0])
                    await remote.close()
                    return
                assert settings.redis_url is not None
                bus = ev.RedisBus(settings.redis_url.get_secret_value())
                mx = MailStore(settings.data_dir, bus)
                await mx.deliver_async(mailbox_id, public_key, corpus(1, seed=99)[0])
                await mx.close()
                await bus.close()

            asyncio.run(go())

        pids = [server.pid] + ([store_server.pid] if store_server is not None else [])
        return asyncio.run(run_suite(port, len(messages), args.idle, args.runs, deliver, lambda: pids))
    finally:
        for proc in (server, store_server, redis):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


# ---- Dovecot ----------------------------------------------------------------------------------------
def run_dovecot(base: Path, messages: list[bytes], args: argparse.Namespace) -> Results:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    base.chmod(0o755)
    maildir = base / "home" / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    stamp = 1735689600
    for i, raw in enumerate(messages):
        flags = "S" if i % 3 == 0 else ""
        path = maildir / "cur" / f"{stamp + 37 * 60 * i}.M{i}P1.bench,S={len(raw)}:2,{flags}"
        path.write_bytes(raw)
        os.utime(path, (stamp + 37 * 60 * i, stamp + 37 * 60 * i))
    for sub in ("run", "state"):
        (base / sub).mkdir()
    hashed = subprocess.run(
        ["doveadm", "pw", "-s", "ARGON2ID", "-p", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    (base / "passwd").write_text(f"{USER}:{hashed}\n")
    for path in (base / "home", *(base / "home").rglob("*")):
        shutil.chown(path, "nobody", "nogroup")
    port = free_port()
    (base / "dovecot.conf").write_text(
        f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{base}/home/Maildir
default_client_limit = {args.idle + 200}
default_process_limit = {args.idle + 200}
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {base}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/home
}}
protocol imap {{
  mail_max_userip_connections = {args.idle + 100}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
    )
    proc = subprocess.Popen([binary, "-F", "-c", str(base / "dovecot.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, "dovecot")

        def deliver() -> None:
            raw = corpus(1, seed=99)[0]
            tmp = maildir / "tmp" / "new.bench"
            tmp.write_bytes(raw)
            shutil.chown(tmp, "nobody", "nogroup")
            os.rename(tmp, maildir / "new" / f"{int(time.time())}.M1P2.bench,S={len(raw)}")

        return asyncio.run(
            run_suite(port, len(messages), args.idle, args.runs, deliver, lambda: process_tree(proc.pid))
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == float("inf"):
        return "never"
    if "MiB" in name or "KiB" in name:
        return f"{value:.0f}"
    if name.endswith("(s)"):
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _ratio(value: float | None, other: float | None) -> str:
    if value is None or other in (None, 0) or float("inf") in (value, other):
        return "-"
    return f"{value / other:.2f}"


def _stores(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(chosen) - set(STORES)
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(STORES)} (comma-separated)")
    return list(dict.fromkeys(chosen))


def print_table(stores: list[str], sealmail: dict[str, Results], dovecot: Results | None) -> None:
    """One column per Sealmail arrangement, Dovecot's, each arrangement's ratio to Dovecot, and remote/in-process."""
    label = {"inprocess": "in-process", "remote": "remote"}
    header = f"\n{'measure':<55}"
    for arrangement in stores:
        header += f" {'Sealmail ' + label[arrangement]:>20}"
    header += f" {'Dovecot':>12}"
    for arrangement in stores:
        header += f" {label[arrangement] + '/Dovecot':>18}"
    both = all(a in sealmail for a in STORES)
    if both:
        header += f" {'remote/in-process':>18}"
    print(header)
    first = sealmail[stores[0]]
    for name in first.times:
        other = dovecot.times.get(name) if dovecot else None
        line = f"{name:<55}"
        for arrangement in stores:
            line += f" {_fmt(name, sealmail[arrangement].times.get(name)):>20}"
        line += f" {_fmt(name, other):>12}"
        for arrangement in stores:
            line += f" {_ratio(sealmail[arrangement].times.get(name), other):>18}"
        if both:
            line += f" {_ratio(sealmail['remote'].times.get(name), sealmail['inprocess'].times.get(name)):>18}"
        print(line)
    for who, res in [*((f"Sealmail {label[a]}", r) for a, r in sealmail.items()), ("Dovecot", dovecot)]:
        if res:
            for key, note in res.notes.items():
                print(f"{who}: {key}: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-dovecot", action="store_true")
    parser.add_argument(
        "--store",
        type=_stores,
        default=["inprocess"],
        help="how Sealmail's IMAP reaches the mailboxes: inprocess, remote (behind `sealmail serve store`), or both",
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # clients and servers hold thousands of sockets
    messages = corpus(args.messages, threads=True)
    print(f"{args.messages} messages, {args.idle} IDLE connections, medians of {args.runs} runs", flush=True)
    print(f"start: {load()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="sealmail-bench-imap-"))
    base.chmod(0o755)  # Dovecot's auth and mail processes run as other users
    sealmail: dict[str, Results] = {}
    dovecot = None
    try:
        for arrangement in args.store:
            (base / f"sealmail-{arrangement}").mkdir()
            sealmail[arrangement] = run_sealmail(base / f"sealmail-{arrangement}", messages, args, arrangement)
            print(f"Sealmail ({arrangement}) done: {load()}", flush=True)
        if not args.skip_dovecot:
            (base / "dovecot").mkdir()
            dovecot = run_dovecot(base / "dovecot", messages, args)
            print(f"Dovecot done: {load()}", flush=True)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
    print_table(args.store, sealmail, dovecot)
    print(f"end: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
