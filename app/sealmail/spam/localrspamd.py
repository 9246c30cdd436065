"""A private rspamd on loopback ports: ``sealmail dev`` and the tests start one.

It runs Debian's packaged configuration (``/etc/rspamd``, included, never copied) with this
instance's changes in a config directory of its own (``local.d/`` merged into the stock modules,
``override.d/`` replacing single keys, as on a deployed host). It is offline and deterministic:
the modules that ask services on the Internet (DNS blocklists, fuzzy hashes, phishing feeds,
remote maps, URL redirect lookups) are off, DNS goes to the resolver given (or nowhere), and the
greylisting threshold is gone (without the greylist module's memory a score in that band would
be deferred for ever). Redis, when given, holds Bayes and rate-limit state.

The proxy worker is off unless ``milter`` is set: then it listens on ``milter_port`` in milter mode
and scans what an MTA hands it itself (``self_scan``), as beside Postfix on a Debian host
(``bench/smtp_inbound.py --rspamd`` compares Sealmail's MX with Postfix so). ``workers`` is how many
processes each scanning worker (normal, and the proxy when on) runs.

rspamd compiles its regular expressions (hyperscan) at start; ``cache_dir`` keeps them between
runs so a start takes about a second instead of tens. They are compiled from Debian's rules alone
(nothing of any message or user), so one cache per user and rspamd version serves every instance
(``default_cache_dir``).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

STOCK_CONFDIR = Path("/etc/rspamd")

# Modules of Debian's configuration that reach the network beyond the resolver, or keep state
# we do not want in a private instance (each is re-enabled by a deployment that wants it).
OFFLINE_DISABLED = (
    "rbl",  # DNS blocklists (and SURBL, merged into it)
    "surbl",
    "emails",  # an RBL for addresses
    "fuzzy_check",  # rspamd.com's fuzzy storage
    "phishing",  # OpenPhish/PhishTank feeds and remote maps
    "neural",
    "asn",  # asn.rspamd.com
    "url_redirector",  # follows shortened URLs over HTTP
    "multimap",  # its stock maps are downloaded (free/disposable mail domains)
    "whitelist",  # downloaded maps
    "mime_types",  # downloaded map
    "mid",  # downloaded map
    "reputation",
    "greylist",  # its whitelist is downloaded; the threshold goes too (see above)
    "rspamd_update",
    "external_services",
    "antivirus",
    "clickhouse",
    "elastic",
    "metadata_exporter",
    "metric_exporter",
    "history_redis",
    "spamassassin",
    "dkim_signing",  # Sealmail signs (smtp.dkimsign); rspamd would look for keys of every local sender
)


class RspamdNotInstalled(RuntimeError):
    pass


def rspamd_binary() -> str | None:
    return shutil.which("rspamd")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sealmail/rspamd-<version>`` (``~/.cache`` by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sealmail" / f"rspamd-{rspamd_version()}"


def rspamd_version() -> str:
    binary = rspamd_binary()
    if binary is None:
        return "unknown"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.split()
    return out[-1] if out else "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRspamd:
    """One private rspamd: ``write_config()`` then ``start()``; ``stop()`` ends it by its PID."""

    workdir: Path  # config, run files and its log; rewritten at each start
    cache_dir: Path  # compiled hyperscan databases, kept between runs
    redis: str | None = None  # "host:port" for Bayes and rate limits
    redis_password: str | None = None
    redis_db: int = 0
    dns: str | None = None  # "host:port" of the only resolver it asks
    actions: dict[str, float | None] = field(default_factory=dict)  # thresholds replacing Debian's
    rules_lua: str = ""  # extra Lua rules (tests add symbols of their own)
    normal_port: int = 0
    controller_port: int = 0
    # The controller asks for it with every request (learning: ``spam.rspamd.RspamdController``), as
    # on a deployed host; made per instance, kept in memory only (rspamd's config gets its hash).
    controller_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    milter: bool = False  # the proxy worker in milter mode, scanning itself (off: no proxy worker)
    milter_port: int = 0
    workers: int = 1  # processes of the normal worker (and of the proxy, when on)
    check_local: bool = False  # check loopback clients as remote ones (SPF, DKIM, DMARC, HELO...)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The normal worker, where ``/checkv2`` is asked."""
        return f"http://127.0.0.1:{self.normal_port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    @property
    def milter_address(self) -> str:
        """Where an MTA's milter client connects (Postfix: ``smtpd_milters = inet:<this>``)."""
        return f"127.0.0.1:{self.milter_port}"

    @property
    def confdir(self) -> Path:
        return self.workdir / "etc"

    def write_config(self) -> None:
        self.normal_port = self.normal_port or free_port()
        self.controller_port = self.controller_port or free_port()
        if self.milter:
            self.milter_port = self.milter_port or free_port()
        conf = self.confdir
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf.mkdir(exist_ok=True, mode=0o700)
        for sub in ("local.d", "override.d"):
            shutil.rmtree(conf / sub, ignore_errors=True)
            (conf / sub).mkdir(parents=True, mode=0o700)
        for sub in ("db", "run"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(conf / "rspamd.conf", f'.include "{STOCK_CONFDIR}/rspamd.conf"\n')
        local, override = conf / "local.d", conf / "override.d"
        _write(
            override / "worker-normal.inc", f'bind_socket = "127.0.0.1:{self.normal_port}";\ncount = {self.workers};\n'
        )
        # Every request to the controller needs the password, loopback too: Debian's ``secure_ip``
        # (127.0.0.1 and ::1 pass without one) is emptied, so the tests and ``sealmail dev`` use the
        # learning path a deployed host uses. The same hash guards reading (``password``) and writing
        # (``enable_password``: learning); Debian's default ("q1") is gone.
        digest = password_hash(self.controller_password)
        _write(
            override / "worker-controller.inc",
            f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n'
            f'password = "{digest}";\nenable_password = "{digest}";\nsecure_ip = [];\n',
        )
        _write(override / "worker-proxy.inc", self._proxy_config())
        _write(override / "logging.inc", 'type = "console";\nlevel = "warning";\n')  # never per message
        # No roll history: rspamd would keep each message's id and symbols on disk at exit.
        options = [f'hs_cache_dir = "{self.cache_dir}/";', "history_file = null;"]
        if self.check_local:
            options.append("check_local = true;")  # the modules' own check_local falls back to this
        if self.dns:
            options.append(f'dns {{\n  nameserver = ["{self.dns}"];\n  timeout = 1s;\n  retransmits = 1;\n}}')
        else:  # nothing answers there: every lookup fails at once
            options.append('dns {\n  nameserver = ["127.0.0.1:1"];\n  timeout = 0.2s;\n  retransmits = 0;\n}')
        _write(local / "options.inc", "\n".join(options) + "\n")
        for module in OFFLINE_DISABLED:
            _write(local / f"{module}.conf", "enabled = false;\n")
        if self.redis:
            lines = [f'servers = "{self.redis}";', f'db = "{self.redis_db}";']
            if self.redis_password:
                lines.append(f'password = "{self.redis_password}";')
            _write(local / "redis.conf", "\n".join(lines) + "\n")
        actions = {"greylist": None, **self.actions}
        _write(
            override / "actions.conf",
            "".join(f"{name} = {'null' if value is None else value};\n" for name, value in actions.items()),
        )
        if self.rules_lua:
            _write(conf / "rspamd.local.lua", self.rules_lua)

    def _proxy_config(self) -> str:
        if not self.milter:
            return "enabled = false;\n"
        # Debian's worker-proxy.inc with our port, and no upstream to forward to: the proxy scans
        # each message itself (self_scan), so a message is scanned once, by the proxy alone.
        return (
            f'bind_socket = "127.0.0.1:{self.milter_port}";\n'
            "milter = yes;\ntimeout = 120s;\n"
            'upstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n'
            f"count = {self.workers};\nmax_retries = 5;\n"
            "discard_on_reject = false;\nquarantine_on_reject = false;\n"
            'spam_header = "X-Spam";\nreject_message = "Spam message rejected";\n'
        )

    def scanned(self) -> int:
        """How many messages this rspamd has scanned so far (the controller's ``/stat``, kept in its db),
        by any worker: the normal one and the milter proxy count alike."""
        with socket.create_connection(("127.0.0.1", self.controller_port), timeout=10) as sock:
            sock.sendall(b"GET /stat HTTP/1.0\r\nPassword: " + self.controller_password.encode() + b"\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status:
            raise RuntimeError(f"rspamd's controller answered {status!r} to /stat")
        return int(json.loads(body)["scanned"])

    def command(self, binary: str) -> list[str]:
        argv = [
            binary,
            "-f",
            "-c",
            str(self.confdir / "rspamd.conf"),
            "-p",
            str(self.workdir / "run" / "rspamd.pid"),
            f"--var=CONFDIR={STOCK_CONFDIR}",
            f"--var=LOCAL_CONFDIR={self.confdir}",
            f"--var=DBDIR={self.workdir / 'db'}",
            f"--var=RUNDIR={self.workdir / 'run'}",
            f"--var=LOGDIR={self.workdir / 'run'}",
        ]
        if os.geteuid() == 0:
            argv.append("-i")  # workers refuse root otherwise; this instance listens on loopback only
        return argv

    def start(self, timeout: float = 30.0) -> float:
        """Start it and wait until the normal worker answers; returns the seconds that took."""
        binary = rspamd_binary()
        if binary is None:
            raise RspamdNotInstalled("rspamd is not installed (apt-get install rspamd)")
        self.write_config()
        log = self.log_path.open("ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(binary), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        try:
            wait_answering(self.normal_port, self.proc, timeout, self.log_path)
        except RuntimeError:
            self.stop()
            raise
        return time.monotonic() - started

    @property
    def log_path(self) -> Path:
        return self.workdir / "run" / "rspamd.log"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def wait_answering(port: int, proc: subprocess.Popen[bytes], timeout: float, log_path: Path) -> None:
    """Until the normal worker at ``port`` answers; RuntimeError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rspamd exited at start (code {proc.returncode}); see {log_path}")
        if _pong(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"rspamd did not answer within {timeout:.0f} s; see {log_path}")


def password_hash(password: str, timeout: float = 10.0) -> str:
    """rspamd's own hash of ``password`` (``rspamadm pw -e``), for the controller's ``password``.

    ``rspamadm pw`` reads the password from its terminal only; it gets a pseudo-terminal of its own
    (``setsid -c`` makes it the controlling one) so the password never appears on a command line,
    where any local user could read it in ``/proc``.
    """
    binary = shutil.which("rspamadm")
    if binary is None:
        raise RspamdNotInstalled("rspamadm is not installed (apt-get install rspamd)")
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            ["setsid", "-c", binary, "pw", "-e"], stdin=secondary, stdout=secondary, stderr=secondary
        )
    finally:
        os.close(secondary)
    try:
        out = _read_until(primary, b"passphrase:", timeout)
        os.write(primary, password.encode() + b"\n")
        proc.wait(timeout)
        out = _read_until(primary, None, 1.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    found = [line for line in out.decode(errors="replace").split() if line.startswith("$")]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"rspamadm pw did not give a password hash (exit code {proc.returncode})")
    return found[-1]


def _read_until(fd: int, marker: bytes | None, timeout: float) -> bytes:
    """What the terminal ``fd`` says until ``marker`` (None: until it ends or goes quiet)."""
    out = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if not ready:
            if marker is None and out:
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
        if marker is not None and marker in out:
            return out
    if marker is not None:
        raise RuntimeError("rspamadm pw did not ask for the password")
    return out


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _pong(port: int) -> bool:
    """rspamd's workers answer ``GET /ping`` with ``pong`` once they serve."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
            reply = sock.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]
