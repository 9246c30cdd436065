"""What the web admin's dashboard shows: mailbox use against quota, 30 days of mail traffic, and the
spam filter's numbers (per day, and its top symbols) that the MX hosts add to the config store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sealmail.errors import InvalidInput
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


# The spam filter's daily series (``config.models.SPAM_OUTCOMES``, counted by ``spam.stats``).
SPAM_SERIES = ("scanned", "rejected", "deferred", "junk", "unchecked")


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


@dataclass(frozen=True, slots=True)
class SpamStats:
    days: list[Day]  # oldest first, zero-filled, one count per ``SPAM_SERIES``
    top_symbols: list[tuple[str, int]]  # (symbol, messages it counted on), most first

    @property
    def totals(self) -> dict[str, int]:
        return {name: sum(d.counts[name] for d in self.days) for name in SPAM_SERIES}


MAX_SPAM_DAYS = 366


def spam_stats(store: ConfigStore, days: int = 30, top: int = 10, today: date | None = None) -> SpamStats:
    """The last ``days`` UTC days of spam numbers, and the ``top`` symbols over them."""
    if not 1 <= days <= MAX_SPAM_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_SPAM_DAYS}")
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    found = {c.day: c for c in store.spam_counts(first, today + timedelta(days=1))}
    series, symbols = [], Counter[str]()
    for n in range(days):
        day = first + timedelta(days=n)
        counts = found.get(day)
        series.append(Day(day, {name: counts.outcomes.get(name, 0) if counts else 0 for name in SPAM_SERIES}))
        if counts:
            symbols.update(counts.symbols)
    ranked = sorted(symbols.items(), key=lambda item: (-item[1], item[0]))[:top]
    return SpamStats(series, ranked)


def human_size(octets: int | None) -> str:
    if octets is None:
        return "—"
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{octets} B"
