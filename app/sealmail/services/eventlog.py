"""Reading the delivery, error and audit log, and writing audit entries.

Every write made through the API or the web admin is recorded (kind ``audit``): who (an admin's
address or a token's name), what (``alias.create``...), on which domain and address, from where.
Never a password, a token or message content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sealmail.config.models import LogEntry, LogKind, LogPage, LogQuery
from sealmail.errors import InvalidInput

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore

# Which components write outbound and inbound delivery entries.
DIRECTIONS: dict[str, list[str]] = {"outbound": ["smtp", "jobs"], "inbound": ["mx"]}


def audit(
    store: ConfigStore,
    component: str,
    actor: str,
    action: str,
    *,
    domain: str | None = None,
    address: str | None = None,
    peer: str | None = None,
    detail: str = "",
) -> LogEntry:
    text = f"by {actor}" + (f": {detail}" if detail else "")
    return store.append_log(
        LogEntry("audit", component, action, domain=domain, address=address, peer=peer, detail=text)
    )


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the component (``web``, ``api``), the admin's address or the token, and
    the peer's IP address."""

    component: str
    name: str
    peer: str


def record(
    store: ConfigStore,
    actor: Actor,
    action: str,
    *,
    domain: str | None = None,
    address: str | None = None,
    detail: str = "",
) -> LogEntry:
    """``audit`` for an ``Actor``."""
    return audit(
        store, actor.component, actor.name, action, domain=domain, address=address, peer=actor.peer, detail=detail
    )


def parse_time(text: str | None, name: str) -> datetime | None:
    """ISO 8601 (``2026-03-01`` or ``2026-03-01T12:00:00Z``); naive times are UTC."""
    if text is None or not text.strip():
        return None
    from datetime import UTC

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def query(
    store: ConfigStore,
    kind: LogKind,
    *,
    domain: str | None = None,
    address: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> LogPage:
    components = None
    if direction:
        if direction not in DIRECTIONS:
            raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}")
        components = DIRECTIONS[direction]
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be after since")
    if domain:
        from sealmail.addresses import normalize_domain

        domain = normalize_domain(domain).ascii
    return store.query_logs(
        LogQuery(
            kind=kind,
            domain=domain or None,
            address=(address or "").strip() or None,
            status=(status or "").strip() or None,
            components=components,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor or None,
        )
    )


@dataclass(frozen=True)
class LogFilters:
    """What a log page is filtered by (the web admin's query string, the API's parameters)."""

    domain: str | None = None
    address: str | None = None
    status: str | None = None
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None

    @classmethod
    def from_text(cls, fields: dict[str, str]) -> LogFilters:
        """From a form's text fields; ``since`` and ``until`` are ISO 8601 (``InvalidInput`` if not)."""
        return cls(
            domain=fields.get("domain"),
            address=fields.get("address"),
            status=fields.get("status"),
            direction=fields.get("direction") or None,
            since=parse_time(fields.get("since"), "from"),
            until=parse_time(fields.get("until"), "until"),
            cursor=fields.get("cursor"),
        )


def read(store: ConfigStore, kind: LogKind, filters: LogFilters) -> LogPage:
    """One page of a log, newest first."""
    return query(
        store,
        kind,
        domain=filters.domain,
        address=filters.address,
        status=filters.status,
        direction=filters.direction,
        since=filters.since,
        until=filters.until,
        limit=filters.limit,
        cursor=filters.cursor,
    )
