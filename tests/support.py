"""Small helpers shared by tests (importable: tests/ is on the path)."""

from __future__ import annotations

import socket
from typing import NoReturn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComponentThread:
    """A component (``sealmail.components``) started on its own event-loop thread, as ``sealmail serve``
    runs it, but inside the test process so the test can also use the services directly.

    Tests drive it with blocking clients from the test thread; ``call`` runs a coroutine on its loop
    and waits for the result."""

    def __init__(self, name: str, settings: object) -> None:
        import asyncio
        import threading

        from sealmail import components

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"{name}-test-loop", daemon=True)
        self.thread.start()
        self.component = components.load(name, settings)  # type: ignore[arg-type]
        self.ports: dict[str, int] = self.call(self.component.start())

    def call(self, coro: object, timeout: float = 60) -> object:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        import asyncio

        try:
            self.call(self.component.stop())
            self.call(asyncio.sleep(0.05))  # let closed transports release their sockets
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str | None = None):
    """Poll ``condition()`` until it returns something truthy and return that; fail after ``timeout`` s.

    For a state another thread or process reaches on its own: the test waits exactly as long as it
    takes, never a guessed sleep, and fails with ``what`` (or the condition's name) if it never comes.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or getattr(condition, '__name__', condition)}")
        time.sleep(interval)


async def async_wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str | None = None):
    """``wait_for`` for the event loop: ``condition`` may be a plain or an async function."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or getattr(condition, '__name__', condition)}")
        await asyncio.sleep(interval)


# -- external tools: one rule for every suite ---------------------------------------------------------
# The Debian package that brings each tool the tests run (scripts/system-deps test installs them all).
TOOL_PACKAGES = {
    "cadaver": "cadaver",
    "dnsmasq": "dnsmasq-base",
    "dovecot": "dovecot-imapd",
    "fetchmail": "fetchmail",
    "getmail": "getmail6",
    "litmus": "litmus",
    "mbsync": "isync",
    "msmtp": "msmtp",
    "neomutt": "neomutt",
    "offlineimap": "offlineimap3",
    "opendkim": "opendkim",
    "perl": "perl",
    "php": "php-cli",
    "redis-server": "redis-server",
    "rspamd": "rspamd",
    "redis-sentinel": "redis-sentinel",
    "sieve-connect": "sieve-connect",
    "ssh-keygen": "openssh-client",
    "swaks": "swaks",
    "systemd-analyze": "systemd",
    "vdirsyncer": "vdirsyncer",
}


def in_ci() -> bool:
    import os

    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(name: str) -> str:
    """The path of an external tool the test runs.

    Missing, it is never silently left out of CI: under ``CI=true`` the test fails (CI installs every
    tool, so a missing one is a broken CI). Locally the test is skipped, naming the apt package.
    ``@pytest.mark.tool("name", ...)`` on a test or module does the same before the test starts.
    """
    import shutil

    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    return missing(name, TOOL_PACKAGES.get(name, name))


def missing(what: str, packages: str) -> NoReturn:
    """``what`` (a tool, a Perl module...) is not installed: fail under ``CI=true``, else skip."""
    import pytest

    if in_ci():
        raise pytest.fail.Exception(
            f"{what} is not installed, and CI=true: install apt package {packages} (scripts/system-deps test)",
            pytrace=False,
        )
    raise pytest.skip.Exception(f"{what} is not installed: apt-get install {packages} (scripts/system-deps test)")


def serve_traced(
    sealmail_bin: str, component: str, env: dict[str, str], run_dir, trace, syscalls: str, port: str, client
) -> list[str]:
    """``sealmail serve <component>`` under strace (``syscalls``, descriptors named, whole process tree)
    while ``client(port)`` runs against the port named ``port`` in its ``<run_dir>/<component>.json``;
    returns the trace's lines. Tests of the order of writes, fsyncs and replies read it: a killed process
    cannot show a missing fsync, the page cache survives it."""
    import json
    import os
    import shutil
    import signal
    import subprocess

    import pytest

    if shutil.which("strace") is None:  # scripts/system-deps test installs it
        pytest.fail("strace is not installed (apt install strace)")
    ready = run_dir / f"{component}.json"
    proc = subprocess.Popen(
        [shutil.which("strace"), "-f", "-y", "-s", "200", "-o", str(trace), "-e", "signal=none", "-e",
         f"trace={syscalls}", sealmail_bin, "serve", component],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=90, what=ready.name)
        assert proc.poll() is None, f"sealmail serve {component} did not start under strace"
        client(json.loads(ready.read_text())["ports"][port])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the component stops, then strace ends with it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return trace.read_text(errors="replace").splitlines()
