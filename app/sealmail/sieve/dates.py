"""RFC 5260 §4.2 date parts, and the ``:zone`` argument of ``date`` and ``currentdate`` (§4.1)."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

_MJD_EPOCH = date(1858, 11, 17)  # RFC 5260 §4.2 "julian": the Modified Julian Day


def zone(text: str) -> timezone:
    """``+hhmm`` / ``-hhmm`` (checked by the compiler or, from variables, by :func:`parse_zone`)."""
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))


def parse_zone(text: str) -> timezone | None:
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit() or int(text[1:3]) > 23 or int(text[3:]) > 59:
        return None
    return zone(text)


def _zone_text(moment: datetime, separator: str = "") -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{separator}{abs(minutes) % 60:02d}"


_PARTS: dict[str, Callable[[datetime], str]] = {
    "year": lambda m: f"{m.year:04d}",
    "month": lambda m: f"{m.month:02d}",
    "day": lambda m: f"{m.day:02d}",
    "date": lambda m: f"{m.year:04d}-{m.month:02d}-{m.day:02d}",
    "julian": lambda m: str((m.date() - _MJD_EPOCH).days),
    "hour": lambda m: f"{m.hour:02d}",
    "minute": lambda m: f"{m.minute:02d}",
    "second": lambda m: f"{m.second:02d}",
    "time": lambda m: f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}",
    # RFC 3339 date-time
    "iso8601": lambda m: m.strftime("%Y-%m-%dT%H:%M:%S") + _zone_text(m, ":"),
    # RFC 5322 §3.3 date-time
    "std11": email.utils.format_datetime,
    "zone": _zone_text,
    "weekday": lambda m: str((m.weekday() + 1) % 7),  # 0 is Sunday
}


def part(moment: datetime, name: str) -> str | None:
    """One date part of ``moment`` as the RFC writes it; ``None`` for an unknown part name."""
    render = _PARTS.get(name)
    return render(moment) if render else None
