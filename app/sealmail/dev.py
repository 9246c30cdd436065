"""``sealmail dev``: the whole mail system on localhost, supervised as one process tree.

It starts a private Redis (unless one is configured) and a private rspamd (unless one is configured
or rspamd is not installed: then mail is not scanned, and it says so), makes a development CA and certificate,
creates the demo domain and alias, starts every available component as its own
``sealmail serve <component>`` child, waits until each reports its listening ports, then writes
``<data-dir>/dev.json`` and prints the same. Children that crash are restarted with backoff.
SIGINT/SIGTERM stop every child (SIGKILL after a grace period); children also die with the
supervisor if it is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sealmail import components
from sealmail.config import open_store
from sealmail.config.base import ConfigStore
from sealmail.crypto.passwords import verify_password
from sealmail.errors import AlreadyExists, SealmailError
from sealmail.net.listen import LOOPBACK_ADDRESSES
from sealmail.runtime import ready_file, write_json_atomic
from sealmail.services import aliases, credentials, domains
from sealmail.services.admins import generate_basic_auth
from sealmail.services.eventlog import Actor
from sealmail.settings import Settings, settings_to_env
from sealmail.tls.devca import DevCertificates, ensure_client_certificate, ensure_dev_certificates

log = logging.getLogger("sealmail.dev")

DEMO_DOMAIN = "example.test"
DEMO_ALIAS = f"demo@{DEMO_DOMAIN}"

# Unprivileged ports, used unless a port was set explicitly (environment, env file).
DEV_PORTS = {
    "mx_port": 2525,
    "submission_tls_port": 2465,
    "submission_port": 2587,
    "imaps_port": 2993,
    "imap_port": 2143,
    "pop3s_port": 2995,
    "pop3_port": 2110,
    "managesieve_port": 4190,  # unprivileged already: the production port
    "web_port": 8443,
    "api_port": 4000,
    "caldav_port": 5000,
    "carddav_port": 6000,
    "store_port": 3456,
}
READY_TIMEOUT = 60.0
RSPAMD_TIMEOUT = 300.0  # its first start compiles Debian's rules (about a minute on 2 busy cores)
AUXILIARY = ("redis", "rspamd")  # started before the components, stopped after them
STOP_GRACE = 10.0
MAX_BACKOFF = 30.0


def dev_settings(settings: Settings) -> Settings:
    """Development defaults for everything the user did not set explicitly."""
    explicit = settings.model_fields_set
    changes: dict[str, object] = {"dev_mode": True}
    changes.update({k: v for k, v in DEV_PORTS.items() if k not in explicit})
    if "bind_addresses" not in explicit:
        changes["bind_addresses"] = list(LOOPBACK_ADDRESSES)  # both families; the dev certificate names both
    if "domain" not in explicit:
        changes["domain"] = DEMO_DOMAIN
    if "hostname" not in explicit:
        changes["hostname"] = "localhost"
    if "http_port" not in explicit:
        # Plain HTTP (ACME answers, redirects to HTTPS): any free port, reported as ports.http.
        changes["http_port"] = _free_port()
    return settings.model_copy(update=changes)


class DevError(SealmailError):
    pass


def _set_pdeathsig() -> None:
    """Child side: receive SIGTERM when the supervisor dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    stdin_data: bytes | None = None
    log_path: Path | None = None  # its output appended there (None: the supervisor's)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    ports: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        log = self.log_path.open("ab") if self.log_path is not None else None
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.PIPE if self.stdin_data is not None else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,  # the terminal's Ctrl-C reaches the supervisor only; it stops us in order
            preexec_fn=_set_pdeathsig,  # noqa: PLW1509 - no threads run in the supervisor
        )
        if log is not None:
            log.close()  # the child has its own descriptor
        if self.stdin_data is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.stdin_data)
            self.proc.stdin.close()
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = False
        self.redis_url: str | None = settings.redis_url.get_secret_value() if settings.redis_url else None
        self.rspamd_url: str | None = settings.rspamd_url
        self.rspamd: Any = None  # the private rspamd's LocalRspamd, when this supervisor runs one

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    # ---- redis ----------------------------------------------------------------------------------
    def start_redis(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise DevError("redis-server not found: apt-get install redis-server, or set SEALMAIL_REDIS_URL")
        port = _free_port()
        password = secrets.token_urlsafe(24)
        redis_dir = self.settings.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The config (with the password) goes through stdin, so it is neither on disk nor in `ps`.
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f'requirepass "{password}"',
                'save ""',
                "appendonly no",
                f'dir "{redis_dir}"',
                "daemonize no",
                "loglevel warning",
                f'logfile "{redis_dir / "redis.log"}"',
                "",
            ]
        )
        # SEALMAIL_DATA_DIR in its environment marks Redis as part of this tree (tests look for leftovers).
        env = {**os.environ, "SEALMAIL_DATA_DIR": str(self.settings.data_dir)}
        child = Child("redis", [binary, "-"], env, stdin_data=config.encode())
        child.start()
        self.children.append(child)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        self._wait_redis(child, url)
        child.ports = {"redis": port}
        return url

    def _wait_redis(self, child: Child, url: str) -> None:
        import redis

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.stopping:
            if not child.alive():
                raise DevError("redis-server exited during start; see its messages above")
            try:
                redis.Redis.from_url(url, socket_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        raise DevError("redis-server did not answer within 15 s")

    # ---- rspamd ---------------------------------------------------------------------------------
    def start_rspamd(self) -> str | None:
        """A private offline rspamd on loopback ports (``spam.localrspamd``); None when rspamd is missing.

        Its Bayes and rate-limit state go to the private Redis (database 1). Its config, with that
        Redis's password and the hash of its controller's password (a new one at each start, handed
        to the components in their environment), stays in ``<data>/rspamd`` (0600, like dev.json's
        demo password)."""
        from urllib.parse import urlsplit

        from sealmail.spam.localrspamd import LocalRspamd, default_cache_dir, rspamd_binary

        binary = rspamd_binary()
        if binary is None:
            print(
                "sealmail dev: rspamd is not installed (apt-get install rspamd): mail is not scanned for spam",
                file=sys.stderr,
                flush=True,
            )
            return None
        redis = urlsplit(self.redis_url) if self.redis_url and self.redis_url.startswith("redis://") else None
        local = LocalRspamd(
            self.settings.data_dir / "rspamd",
            default_cache_dir(),
            redis=f"{redis.hostname}:{redis.port or 6379}" if redis is not None else None,
            redis_password=redis.password if redis is not None else None,
            redis_db=1,
        )
        local.write_config()
        env = {**os.environ, "SEALMAIL_DATA_DIR": str(self.settings.data_dir)}  # marks it part of this tree
        child = Child("rspamd", local.command(binary), env, log_path=local.log_path)
        child.start()
        child.ports = {"rspamd": local.normal_port, "rspamd_controller": local.controller_port}
        self.children.append(child)
        self.rspamd = local
        return local.url

    def wait_rspamd(self) -> None:
        from sealmail.spam.localrspamd import wait_answering

        child = next(c for c in self.children if c.name == "rspamd")
        assert child.proc is not None
        assert self.rspamd is not None
        try:
            wait_answering(self.rspamd.normal_port, child.proc, 5.0, self.rspamd.log_path)
        except RuntimeError:
            if not child.alive():
                raise DevError(f"rspamd exited during start; see {self.rspamd.log_path}") from None
            print("sealmail dev: waiting for rspamd (its first start compiles its rules)", file=sys.stderr, flush=True)
            try:
                wait_answering(self.rspamd.normal_port, child.proc, RSPAMD_TIMEOUT, self.rspamd.log_path)
            except RuntimeError as exc:
                raise DevError(str(exc)) from None

    # ---- components -----------------------------------------------------------------------------
    def start_components(self, names: list[str]) -> None:
        env = {**os.environ, **settings_to_env(self.settings)}
        if self.redis_url:
            env["SEALMAIL_REDIS_URL"] = self.redis_url
        if self.rspamd_url:
            env["SEALMAIL_RSPAMD_URL"] = self.rspamd_url
        if self.rspamd is not None:
            # IMAP teaches the private rspamd what the user files into or out of Junk, with the password
            # its controller was given (in the children's environment only: never printed, never in dev.json)
            env["SEALMAIL_RSPAMD_CONTROLLER_URL"] = self.rspamd.controller_url
            env["SEALMAIL_RSPAMD_CONTROLLER_PASSWORD"] = self.rspamd.controller_password
        env.pop("SEALMAIL_ENV_FILE", None)  # children get every setting through env already
        # --split: the store component is the data host and alone opens config.sqlite; every other
        # component reads the config store through it (SEALMAIL_CONFIG_BACKEND=store), as on several hosts.
        front_env = env
        if self.settings.store_url is not None and self.settings.config_backend == "sqlite":
            front_env = {**env, "SEALMAIL_CONFIG_BACKEND": "store"}
        for name in names:
            ready_file(self.settings.run_dir, name).unlink(missing_ok=True)
            argv = [sys.executable, "-m", "sealmail", "serve", name]
            child = Child(name, argv, env if name == "store" else front_env)
            child.start()
            self.children.append(child)

    def _components(self) -> list[Child]:
        return [c for c in self.children if c.name not in AUXILIARY]

    def wait_ready(self) -> dict[str, int]:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {c.name: c for c in self._components()}
        while pending:
            if self.stopping:
                raise DevError("stopped before every component was ready")
            for name, child in list(pending.items()):
                marker = ready_file(self.settings.run_dir, name)
                if marker.exists():
                    child.ports = json.loads(marker.read_text())["ports"]
                    del pending[name]
                elif not child.alive():
                    code = child.proc.returncode if child.proc else None
                    raise DevError(f"component {name} exited during start (code {code})")
            if time.monotonic() > deadline:
                raise DevError(f"components not ready after {READY_TIMEOUT:.0f} s: {', '.join(pending)}")
            time.sleep(0.05)
        ports: dict[str, int] = {}
        for child in self._components():
            ports.update(child.ports)
        return ports

    def supervise(self) -> None:
        """Restart crashed children with exponential backoff until asked to stop."""
        while not self.stopping:
            for child in self.children:
                if child.alive() or self.stopping:
                    continue
                now = time.monotonic()
                if child.next_start == 0.0:
                    ran = now - child.started_at
                    child.restarts = 0 if ran > 60 else child.restarts + 1
                    delay = min(MAX_BACKOFF, 2 ** (child.restarts - 1)) if child.restarts else 0.5
                    code = child.proc.returncode if child.proc else "?"
                    log.warning("%s exited with code %s; restarting in %.1f s", child.name, code, delay)
                    child.next_start = now + delay
                elif now >= child.next_start:
                    child.next_start = 0.0
                    if child.name in AUXILIARY:
                        child.start()
                    else:
                        ready_file(self.settings.run_dir, child.name).unlink(missing_ok=True)
                        child.start()
            time.sleep(0.2)

    def stop_all(self) -> None:
        """SIGTERM every child (components first, rspamd and Redis last), SIGKILL what is left after the grace period."""
        auxiliary = [c for c in self.children if c.name in AUXILIARY]
        for group in (self._components(), auxiliary):
            for child in group:
                if child.alive() and child.proc is not None:
                    child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            for child in group:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0f s; killing it", child.name, STOP_GRACE)
                    child.proc.kill()
                    child.proc.wait()
        for child in self._components():
            ready_file(self.settings.run_dir, child.name).unlink(missing_ok=True)


def ensure_demo(store: ConfigStore, settings: Settings, previous_password: str | None) -> str:
    """The demo domain and alias; returns the alias's password (the same one on every run)."""
    with contextlib.suppress(AlreadyExists):
        domains.add_domain(store, DEMO_DOMAIN, settings)
    try:
        alias = aliases.add_alias(store, DEMO_ALIAS, storage=True, description="demo alias made by sealmail dev")
    except AlreadyExists:
        alias = aliases.get_alias(store, DEMO_ALIAS)
    credential = store.get_credential(alias.id)
    if previous_password and credential and verify_password(settings, credential.password_hash, previous_password):
        return previous_password
    # Dev only: the old password is unknown, so the demo mailbox starts afresh.
    return credentials.set_password(
        store, settings, DEMO_ALIAS, reset_mailbox=True, actor=Actor("dev", "sealmail dev", "local")
    )


def _lock(settings: Settings) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(settings.run_dir / "dev.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise DevError(f"another sealmail dev (pid {other}) is running on {settings.data_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _print_summary(info: dict[str, Any]) -> None:
    ports = "  ".join(f"{k} {v}" for k, v in info["ports"].items()) or "(no component listens yet)"
    basic = info.get("basic_auth") or {}
    rows = [
        ("domain", info["domain"]),
        ("alias", info["alias"]),
        ("password", info["password"]),
        ("web setup", f"{basic.get('username')} / {basic.get('password')} (basic auth until an admin exists)"),
        ("CA cert", info["ca_cert"]),
        ("data dir", info["data_dir"]),
        ("addresses", ", ".join(info["addresses"])),
        ("ports", ports),
        ("rspamd", (info.get("rspamd") or {}).get("url") or "not running: mail is not scanned for spam"),
    ]
    print("\nSealmail is running on localhost:")
    for label, value in rows:
        print(f"  {label:<9} {value}")
    print(f"\n  details in {Path(info['data_dir']) / 'dev.json'}; Ctrl-C stops everything\n", flush=True)


def _rspamd_info(supervisor: Supervisor) -> dict[str, Any] | None:
    if supervisor.rspamd_url is None:
        return None
    info: dict[str, Any] = {"url": supervisor.rspamd_url, "private": supervisor.rspamd is not None}
    if supervisor.rspamd is not None:
        info["controller_url"] = supervisor.rspamd.controller_url
    return info


def store_channel(settings: Settings, certs: DevCertificates, *, split: bool) -> Settings:
    """The store component's mutual TLS from the dev CA; with ``split``, every other component reaches
    the mailboxes only through it (``store_url``)."""
    client_cert, client_key = ensure_client_certificate(certs.ca_cert.parent)
    changes: dict[str, object] = {
        "store_ca_file": settings.store_ca_file or certs.ca_cert,
        "store_client_cert_file": settings.store_client_cert_file or client_cert,
        "store_client_key_file": settings.store_client_key_file or client_key,
    }
    if split:
        port = settings.store_port or _free_port()  # the front-ends must know it before the store listens
        changes["store_port"] = port
        changes["store_url"] = f"wss://localhost:{port}"
    return settings.model_copy(update=changes)


def run_dev(base: Settings, *, split: bool = False) -> int:
    settings = dev_settings(base)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_fd = _lock(settings)
    certs = ensure_dev_certificates(settings.data_dir / "tls", names=(settings.mail_hostname, DEMO_DOMAIN))
    if "tls_cert_file" not in base.model_fields_set:
        settings = settings.model_copy(update={"tls_cert_file": certs.cert, "tls_key_file": certs.key})
    settings = store_channel(settings, certs, split=split)

    dev_json = settings.data_dir / "dev.json"
    previous = json.loads(dev_json.read_text()) if dev_json.exists() else {}

    # The web admin's first-run gate: kept across runs like the demo password (dev mode only).
    if settings.auth_basic_password is None:
        kept = previous.get("basic_auth") or {}
        if kept.get("username") and kept.get("password"):
            user, secret = kept["username"], kept["password"]
        else:
            user, secret = generate_basic_auth()
        settings = settings.model_copy(
            update={
                "auth_basic_username": settings.auth_basic_username or user,
                "auth_basic_password": SecretStr(secret),
            }
        )
    basic_auth = {
        "username": settings.auth_basic_username or "admin",
        "password": settings.auth_basic_password.get_secret_value() if settings.auth_basic_password else "",
    }

    supervisor = Supervisor(settings)
    old_handlers = {sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if supervisor.redis_url is None:
            supervisor.redis_url = supervisor.start_redis()
        if supervisor.rspamd_url is None:
            supervisor.rspamd_url = supervisor.start_rspamd()
        with open_store(settings) as store:
            # Seeded as the data host sees it (the files are local here; with --split the store
            # component, not yet running, serves them afterwards).
            password = ensure_demo(store, settings.model_copy(update={"store_url": None}), previous.get("password"))
        supervisor.start_components(components.available())
        ports = supervisor.wait_ready()
        if supervisor.rspamd is not None:
            supervisor.wait_rspamd()
        info = {
            "domain": DEMO_DOMAIN,
            "alias": DEMO_ALIAS,
            "password": password,
            "basic_auth": basic_auth,
            "ca_cert": str(certs.ca_cert),
            "data_dir": str(settings.data_dir),
            "addresses": settings.bind_addresses,  # every port listens on each of them
            "ports": ports,
            "split": split,  # front-ends reach mailboxes only through the store component (ports.store)
            # the spam filter the MX asks (None: not scanned); a private one listens on 127.0.0.1 only
            "rspamd": _rspamd_info(supervisor),
            "pid": os.getpid(),
        }
        write_json_atomic(dev_json, info)
        _print_summary(info)
        supervisor.supervise()
        return 0
    except DevError as exc:
        print(f"sealmail dev: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop_all()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        os.close(lock_fd)
