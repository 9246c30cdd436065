"""Run ids, manifests and which runs retention keeps."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sealmail.backup.errors import BackupError

_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def new_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(_FORMAT)


def run_time(run_id: str) -> datetime:
    return datetime.strptime(run_id, _FORMAT).replace(tzinfo=UTC)


@dataclass(slots=True)
class Entry:
    name: str  # where the file goes back (see snapshot.py)
    secret: bool  # sealed to the operator key
    id: str  # identity of the content: SHA-256, or for secrets an HMAC with the host's backup key
    size: int  # octets of the file itself
    object: str  # object key in the bucket
    stored_sha256: str  # of the object as uploaded (what verify checks)
    stored_size: int
    etag: str = ""  # the object's ETag when uploaded: a listing shows whether it is still intact


@dataclass(slots=True)
class Manifest:
    run: str
    host: str
    entries: list[Entry]
    uploaded: list[str] = field(default_factory=list)  # names whose content changed in this run
    version: int = 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(
                run=raw["run"],
                host=raw["host"],
                entries=[Entry(**e) for e in raw["entries"]],
                uploaded=list(raw.get("uploaded", [])),
                version=int(raw.get("version", 1)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"the manifest is damaged: {exc}") from exc


def runs_to_keep(run_ids: list[str], daily: int, weekly: int, monthly: int) -> set[str]:
    """The newest run always, then the newest run of each of the last ``daily`` days that have
    runs, of the last ``weekly`` ISO weeks and of the last ``monthly`` months."""
    ordered = sorted(run_ids, reverse=True)
    keep = set(ordered[:1])
    periods: list[tuple[int, Callable[[datetime], Hashable]]] = [
        (daily, lambda t: t.date()),
        (weekly, lambda t: tuple(t.isocalendar())[:2]),
        (monthly, lambda t: (t.year, t.month)),
    ]
    for count, period in periods:
        seen: set[Hashable] = set()
        for run_id in ordered:
            key = period(run_time(run_id))
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.add(key)
            keep.add(run_id)
    return keep
