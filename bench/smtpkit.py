"""What the SMTP benchmarks share: a lean SMTP client, a counting aiosmtpd sink, process helpers.

The client is raw lines over asyncio (no parsing beyond reply codes) so it costs the machine little
beside the server it measures. A message's latency is the time from handing the final ``.`` of
DATA to the kernel until the server's reply to it arrives.

Run as a script, this file is the counting sink (the aiosmtpd ceiling, and the outbound "remote"):

    python bench/smtpkit.py sink --port N [--cert F --key F]

It accepts everything, counts messages, and answers ``VRFY <stats@sink.test>`` with
``252 count=<n> first=<unix time> last=<unix time>`` so a benchmark can watch it from outside.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its descendants have used so far (those that exited
    and were waited for too, as Postfix's short-lived processes are)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
    return total


@dataclass(frozen=True, slots=True)
class Mail:
    mail_from: str
    rcpts: tuple[str, ...]
    data: bytes  # CRLF line endings, ends with CRLF, not yet dot-stuffed


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line starting with "." gets another; then the terminating ".\r\n"."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpError(Exception):
    pass


class Client:
    """One SMTP session: EHLO, optional STARTTLS / implicit TLS and AUTH PLAIN, then transactions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.extensions: set[str] = set()

    @classmethod
    async def open(
        cls,
        port: int,
        *,
        helo: str = "client.bench.test",
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls if implicit_tls else None, server_hostname="localhost" if implicit_tls else None
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer)
        await client.expect(220)
        await client.ehlo(helo)
        if tls is not None and not implicit_tls:
            await client.command("STARTTLS", 220)
            await client.writer.start_tls(tls, server_hostname="localhost")
            await client.ehlo(helo)
        if auth is not None:
            token = base64.b64encode(f"\0{auth[0]}\0{auth[1]}".encode()).decode()
            await client.command(f"AUTH PLAIN {token}", 235)
        return client

    async def reply(self) -> tuple[int, bytes]:
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    async def expect(self, code: int) -> bytes:
        got, text = await self.reply()
        if got != code:
            raise SmtpError(text.decode("utf-8", "replace").strip())
        return text

    async def command(self, line: str, code: int) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self.expect(code)

    async def ehlo(self, helo: str) -> None:
        text = await self.command(f"EHLO {helo}", 250)
        self.extensions = {line[4:].split()[0].upper() for line in text.decode().splitlines()[1:] if len(line) > 4}

    async def send(self, mail: Mail) -> float:
        """One transaction; returns the seconds from the end of DATA to the 250."""
        commands = [f"MAIL FROM:<{mail.mail_from}>", *(f"RCPT TO:<{r}>" for r in mail.rcpts), "DATA"]
        codes = [250] * (len(commands) - 1) + [354]
        if "PIPELINING" in self.extensions:  # RFC 2920: the whole envelope in one write
            self.writer.write("".join(c + "\r\n" for c in commands).encode())
            for code in codes:
                await self.expect(code)
        else:
            for line, code in zip(commands, codes, strict=True):
                await self.command(line, code)
        self.writer.write(dot_stuff(mail.data))
        await self.writer.drain()
        start = time.perf_counter()
        await self.expect(250)
        return time.perf_counter() - start

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command("QUIT", 221), 5)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    cpu: float | None = None  # CPU seconds the server used meanwhile, when known

    @property
    def cpu_ms(self) -> float | None:
        """Server CPU milliseconds per message."""
        return None if self.cpu is None else 1000 * self.cpu / len(self.latencies)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        """Milliseconds at percentile ``p`` (1..99)."""
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


async def blast(
    port: int | Sequence[int],
    mails: Sequence[Mail],
    connections: int,
    *,
    per_session: int = 100,
    server_pid: int | Sequence[int] | None = None,
    **session: object,
) -> Run:
    """Send every mail over ``connections`` concurrent sessions (the first ones opened before the clock starts).

    A session carries at most ``per_session`` messages, then QUITs and a new one takes over (the
    time that takes counts): Sealmail's MX allows 100 MAIL commands per session by default
    (``SEALMAIL_MX_COMMAND_LIMIT``), and every server here is driven the same way.

    Several ports (several MX hosts): connection i goes to ``port[i % len(port)]``, always the same
    one. Several server process ids: the CPU counted is theirs together.
    """
    ports = [port] if isinstance(port, int) else list(port)
    pids = [] if server_pid is None else [server_pid] if isinstance(server_pid, int) else list(server_pid)
    first = list(
        await asyncio.gather(*(Client.open(ports[i % len(ports)], **session) for i in range(connections)))  # type: ignore[arg-type]
    )
    feed: Iterator[Mail] = iter(mails)
    latencies: list[float] = []

    async def worker(client: Client, port: int) -> None:
        sent = 0
        for mail in feed:  # a shared iterator: each session takes the next message when it is free
            if sent == per_session:
                await client.close()
                client = await Client.open(port, **session)  # type: ignore[arg-type]
                sent = 0
            latencies.append(await client.send(mail))
            sent += 1
        await client.close()

    cpu = sum(cpu_seconds(pid) for pid in pids)
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, ports[i % len(ports)]) for i, c in enumerate(first)))
    seconds = time.perf_counter() - start
    return Run(seconds, latencies, sum(cpu_seconds(pid) for pid in pids) - cpu if pids else None)


# ---- processes ------------------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    env.update(extra)
    return env


def write_env_file(path: Path, values: dict[str, object]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def sealmail_component(name: str, env_file: Path, data_dir: Path, log: Path) -> Iterator[tuple[dict[str, int], int]]:
    """``sealmail serve NAME`` as its own process; yields its ports and process id once it reports ready."""
    marker = data_dir / "run" / f"{name}.json"
    marker.unlink(missing_ok=True)
    with log.open("ab") as errors:
        proc = subprocess.Popen(
            [*_python(name), "-m", "sealmail", "serve", name, "--env-file", str(env_file)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and json.loads(marker.read_text() or "{}").get("pid") == proc.pid):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sealmail serve {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield json.loads(marker.read_text())["ports"], proc.pid
    finally:
        stop(proc)


def _python(component: str) -> list[str]:
    """The interpreter; under cProfile when ``BENCH_PROFILE=<component>`` (profile in /tmp/<component>.prof)."""
    if os.environ.get("BENCH_PROFILE") == component:
        return [sys.executable, "-m", "cProfile", "-o", f"/tmp/{component}.prof"]  # noqa: S108 - a developer's aid
    return [sys.executable]


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """A private Redis (as in production, the components share one); None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


@contextlib.contextmanager
def counting_sink(port: int, tls: tuple[Path, Path] | None = None) -> Iterator[SinkWatch]:
    """The counting aiosmtpd sink (this file as a script) as its own process."""
    args = [sys.executable, __file__, "sink", "--port", str(port)]
    if tls is not None:
        args += ["--cert", str(tls[0]), "--key", str(tls[1])]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the counting sink did not start")
            time.sleep(0.05)
        yield SinkWatch(port, proc.pid)
    finally:
        stop(proc)


class SinkWatch:
    """Asks the sink how many messages it took, and when the first and the last arrived."""

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.pid = pid

    def stats(self) -> tuple[int, float, float]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            stream.readline()
            stream.write(b"VRFY <stats@sink.test>\r\n")
            stream.flush()
            reply = stream.readline().decode()
            stream.write(b"QUIT\r\n")
            stream.flush()
        fields = dict(part.split("=") for part in reply.split()[1:])
        return int(fields["count"]), float(fields["first"]), float(fields["last"])

    def wait_for(self, count: int, timeout: float) -> tuple[int, float, float]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.stats()
            if got[0] >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


# ---- the counting sink ----------------------------------------------------------------------------
class CountingHandler:
    """Counts and accepts: what aiosmtpd itself can take (no storage, no checks)."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook
        now = time.time()
        self.first = self.first or now
        self.last = now
        self.count += 1
        return "250 2.0.0 Ok: counted"

    async def handle_VRFY(self, server: object, session: object, envelope: object, address: str) -> str:  # noqa: N802
        return f"252 count={self.count} first={self.first:.6f} last={self.last:.6f}"


def _serve_sink(port: int, cert: str | None, key: str | None) -> None:
    from aiosmtpd.smtp import SMTP

    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    handler = CountingHandler()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop_event = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop_event.set)
        server = await loop.create_server(
            lambda: SMTP(
                handler,
                hostname="mx.sink.test",
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=context,
                require_starttls=False,
            ),
            "127.0.0.1",
            port,
        )
        await stop_event.wait()
        server.close()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the counting aiosmtpd sink")
    parser.add_argument("role", choices=["sink"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    _serve_sink(args.port, args.cert, args.key)
