"""What the web admin's dashboard shows: mailbox use against quota, and 30 days of mail traffic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sealmail.services.aliases import alias_address
from sealmail.services.credentials import quota_of

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

# Chart series -> the delivery-log statuses counted in it (see smtp/inbound.py, smtp/submission.py,
# smtp/delivery.py, jobs/webhooks.py for who writes which).
SERIES: dict[str, tuple[str, ...]] = {
    "accepted": ("stored", "queued-forward", "queued-webhook", "queued"),  # taken in by the MX or submission
    "delivered": ("delivered", "webhook-delivered"),  # handed to the next hop
    "deferred": ("deferred", "webhook-deferred"),  # a temporary failure, retried later
    "bounced": ("bounced", "webhook-failed", "rejected"),  # given up, or refused at the door
}


@dataclass(frozen=True, slots=True)
class Usage:
    alias_id: str
    address: str
    used: int | None  # None: no session has opened the mailbox yet
    quota: int

    @property
    def percent(self) -> float:
        if not self.quota or self.used is None:
            return 0.0
        return min(100.0, 100.0 * self.used / self.quota)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    counts: dict[str, int]


def mailbox_usage(store: ConfigStore, settings: Settings) -> list[Usage]:
    """Every alias with a mailbox, fullest first."""
    rows = []
    for alias in store.list_aliases():
        if not alias.storage:
            continue
        credential = store.get_credential(alias.id)
        used = credential.usage_bytes if credential is not None else None
        rows.append(Usage(alias.id, alias_address(store, alias), used, quota_of(alias, settings)))
    return sorted(rows, key=lambda u: (-u.percent, -(u.used or 0), u.address))


def traffic(store: ConfigStore, days: int = 30, today: date | None = None) -> list[Day]:
    """Per UTC day, oldest first, the count of each series (``SERIES``), zero-filled."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    counts = store.count_logs("delivery", since, until)
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        out.append(
            Day(day, {name: sum(counts.get((day, s), 0) for s in statuses) for name, statuses in SERIES.items()})
        )
    return out


def human_size(octets: int | None) -> str:
    if octets is None:
        return "—"
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{octets} B"
