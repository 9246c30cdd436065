"""Running one component as a process: signals, readiness report, clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail import components, logs

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.runtime")
REPORT_INTERVAL = 1.0  # seconds between looks at a component's open sessions and the drain flag


def ready_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def write_json_atomic(path: Path, data: object, mode: int = 0o600) -> None:
    """Write, fsync and rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def no_core_dumps() -> None:
    """A component holds unwrapped mailbox keys and plaintext in memory: a core dump would write
    them to disk. Set the core size limit to zero for this process and its children (the session
    processes of the MX), whatever the service manager allowed."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def serve(name: str, settings: Settings) -> int:
    """Run component ``name`` until SIGTERM or SIGINT. Returns the process exit code."""
    no_core_dumps()
    logs.configure(name, settings.log_level)
    component = components.load(name, settings)
    return asyncio.run(_serve(name, component, settings))


async def _serve(name: str, component: components.Component, settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    problem = await _redis_problem(settings)
    if problem is not None:
        log.error("cannot start: %s", problem)
        return 1
    try:
        ports = await component.start()
    except OSError as exc:
        # The common failure at start: a port in use or not allowed. One clear line, no traceback.
        log.error("cannot start: %s", exc.strerror or exc)
        await component.stop()
        return 1
    marker = ready_file(settings.run_dir, name)
    addresses = settings.bind_addresses if ports else []
    ready = {"component": name, "pid": os.getpid(), "addresses": addresses, "ports": ports}
    write_json_atomic(marker, ready)
    reporter = asyncio.create_task(_report_sessions(marker, ready, component, settings), name="sealmail-sessions")
    log.info(
        "ready, listening on %s%s",
        ", ".join(f"{k}={v}" for k, v in ports.items()) or "no ports",
        f" at {', '.join(addresses)}" if addresses else "",
    )
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        reporter.cancel()
        await component.stop()
        marker.unlink(missing_ok=True)
    return 0


async def _report_sessions(marker: Path, ready: dict[str, object], component: object, settings: Settings) -> None:
    """Keep the ready file's ``sessions`` (connections open now) and ``draining`` current.

    ``sealmail status`` reads them: a rollout drains a host, then waits for the sessions to end.
    Only components that count their connections (a ``sessions`` property) report them.
    """
    from sealmail.net.drain import DrainFlag

    if not hasattr(component, "sessions"):
        return
    flag = DrainFlag(settings.run_dir)
    last: tuple[int, bool] | None = None
    while True:
        now = (int(getattr(component, "sessions", 0)), flag())
        if now != last:
            last = now
            try:
                write_json_atomic(marker, {**ready, "sessions": now[0], "draining": now[1]})
            except OSError as exc:
                log.warning("cannot update %s: %s", marker, exc)
        await asyncio.sleep(REPORT_INTERVAL)


async def _redis_problem(settings: Settings) -> str | None:
    """Security state in a Redis that may evict it (``net.redispolicy``), unless the setting waives it."""
    if settings.redis_url is None or settings.redis_allow_eviction:
        return None
    import redis.exceptions

    from sealmail.net import redisconn, redispolicy

    found = redisconn.connector(settings)
    assert found is not None
    client = found.client(socket_connect_timeout=10)
    try:
        return await redispolicy.check(client)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        log.warning("cannot reach Redis to check its maxmemory-policy; starting anyway")
        return None
    finally:
        await client.aclose()
