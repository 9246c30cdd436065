"""What ``sealmail status`` (and the web dashboard) report: components, queue, recent delivery trouble."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sealmail import components
from sealmail.config.models import LogQuery, now
from sealmail.net.drain import DrainFlag
from sealmail.runtime import ready_file

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

PORT_25_ADVICE = (
    "Outgoing mail is not getting out: every connection to port 25 of the receiving servers timed out. "
    "Your hosting provider probably blocks outbound port 25 (many do by default). Ask them to unblock it, "
    "or use a provider that allows mail servers."
)


@dataclass
class Status:
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue: dict[str, int] = field(default_factory=dict)
    oldest_pending_seconds: float | None = None
    domains: int = 0
    aliases: int = 0
    draining: bool = False  # ``sealmail drain on``: new connections are turned away
    # rspamd (SEALMAIL_RSPAMD_URL): {"url", "answers", "error", "when_unavailable"}; None: scanning is off
    spam_filter: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect(store: ConfigStore, settings: Settings) -> Status:
    status = Status(
        domains=len(store.list_domains()),
        aliases=len(store.list_aliases()),
        draining=DrainFlag(settings.run_dir)(),
    )
    for name in components.here(settings):
        marker = ready_file(settings.run_dir, name)
        info: dict[str, Any] = {"running": False}
        if marker.exists():
            data = json.loads(marker.read_text())
            info = {
                "running": _alive(int(data.get("pid", 0))),
                "pid": data.get("pid"),
                "addresses": data.get("addresses", []),  # every port listens on each
                "ports": data.get("ports", {}),
            }
            if "sessions" in data:  # components that accept connections count them
                info["sessions"] = data["sessions"]
        status.components[name] = info
    queue_path = settings.data_dir / "queue.sqlite"
    if queue_path.exists():
        import sqlite3

        db = sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT kind || ':' || status, count(*) FROM jobs GROUP BY kind, status").fetchall()
            status.queue = dict(rows)
            oldest = db.execute("SELECT min(created_at) FROM jobs WHERE status = 'pending'").fetchone()[0]
            status.oldest_pending_seconds = time.time() - oldest if oldest else None
        finally:
            db.close()
    recent = store.query_logs(LogQuery(kind="delivery", since=now() - timedelta(hours=24), limit=200)).entries
    outbound = [e for e in recent if e.component == "jobs" and e.status in ("deferred", "delivered", "bounced")]
    if outbound and all(e.status == "deferred" and "port 25" in e.detail for e in outbound[:5]):
        status.problems.append(PORT_25_ADVICE)
    errors = store.query_logs(LogQuery(kind="error", since=now() - timedelta(hours=24), limit=5)).entries
    status.problems += [f"{e.time:%Y-%m-%d %H:%M} {e.component}: {e.detail}" for e in errors]
    if settings.rspamd_url is not None:
        status.spam_filter = spam_filter(settings)
        if not status.spam_filter["answers"]:
            consequence = (
                "messages are deferred (451 4.7.1) until it is back"
                if settings.rspamd_unavailable == "tempfail"
                else "messages are accepted unchecked (X-Spam-Status: unchecked)"
            )
            status.problems.append(
                f"rspamd at {settings.rspamd_url} does not answer ({status.spam_filter['error']}): {consequence}"
            )
    from sealmail.net.redisconn import connector

    redis_at = connector(settings)
    if redis_at is not None:
        from sealmail.net.redispolicy import check_sync

        problem = check_sync(redis_at)
        if problem is not None:
            status.problems.append(problem)
    return status


def spam_filter(settings: Settings) -> dict[str, Any]:
    """Whether rspamd answers its ``/ping`` (the normal worker the MX asks)."""
    from sealmail.spam.rspamd import ping

    assert settings.rspamd_url is not None
    error = ping(settings.rspamd_url, timeout=min(settings.rspamd_timeout, 5.0))
    return {
        "url": settings.rspamd_url,
        "answers": error is None,
        "error": error,
        "when_unavailable": settings.rspamd_unavailable,
    }
