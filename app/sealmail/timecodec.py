"""Timestamps as stored text: one fixed-width UTC form shared by the config backends and the mail store.

Kept apart from both so neither storage layer imports the other for it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(value: datetime) -> str:
    """Fixed-width UTC text, so SQLite orders it correctly as a string."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value)
