"""Run ids, manifests (and their MAC) and which runs retention keeps.

Why a manifest is authenticated, and how
----------------------------------------
Restore runs as root and puts every file a manifest names where the manifest says, so a manifest
is as powerful as root on the restored host. Anyone who can write to the bucket — a leaked S3
key, the storage provider, another host sharing the credentials — could otherwise write one.
Checking each object's SHA-256 against the manifest does not help when the manifest itself is the
forgery, and sealing does not either: sealed boxes (``crypto.sealed``) are anonymous, anyone with
the operator *public* key can seal any content, so "it opens with the operator key" proves nothing
about who wrote it. For the same reason a fresh MAC key sealed into each backup would prove
nothing: a forger seals a MAC key of their own.

The MAC key must therefore be a secret the bucket's writer does not have and the restorer can
rebuild from what it holds: the operator private key. It is ``HKDF-SHA256(operator private key,
info="sealmail backup manifest key v1")`` (``keys.derive_manifest_key``), printed by
``sealmail backup init-key`` next to the public key and given to the host as
``SEALMAIL_BACKUP_MANIFEST_KEY``. The host can compute MACs but learns nothing of the private key;
the restorer derives the key again from the private key file it is given and checks the MAC
before it reads a single entry. What the host holds is what a forger would need, so this protects
against everyone but an attacker who already has root on the backed-up host.

The stored object ``runs/<run>.json`` is ``{"format": "sealmail-backup-manifest", "version": 2,
"mac": "<hex>", "manifest": "<the manifest's JSON text>"}``; the MAC is HMAC-SHA256 over a domain
label, the bucket prefix, the run id and the exact manifest text, so a manifest cannot be moved to
another run or another host's prefix either. The manifest names each object's SHA-256, so one
good MAC covers every object of the run. Manifests without a MAC (version 1, from before) are not
restored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sealmail.backup.errors import BackupError

_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def new_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(_FORMAT)


def is_run_id(text: str) -> bool:
    return re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z", text) is not None


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
        """The manifest of its JSON text; ``BackupError`` for anything that is not one, of any shape."""
        raw = _load_json(data, "the manifest is damaged")
        try:
            if not isinstance(raw, dict):
                raise TypeError("not a JSON object")
            entries = _field(raw, "entries", list)
            uploaded = _field(raw, "uploaded", list, [])
            if not all(isinstance(name, str) for name in uploaded):
                raise TypeError("uploaded names must be strings")
            return cls(
                run=_field(raw, "run", str),
                host=_field(raw, "host", str),
                entries=[_entry(e) for e in entries],
                uploaded=uploaded,
                version=_field(raw, "version", int, 1),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"the manifest is damaged: {exc}") from exc


_MISSING = object()
_ENTRY_TYPES = {
    "name": str,
    "secret": bool,
    "id": str,
    "size": int,
    "object": str,
    "stored_sha256": str,
    "stored_size": int,
    "etag": str,
}


def _field(raw: dict[str, Any], key: str, kind: type, default: Any = _MISSING) -> Any:
    """``raw[key]`` when it has the JSON type the manifest format gives it (a bool is no number)."""
    value = raw.get(key, default)
    if value is _MISSING:
        raise KeyError(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{key} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _entry(raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise TypeError("an entry is not a JSON object")
    unknown = set(raw) - set(_ENTRY_TYPES)
    if unknown:
        raise TypeError(f"unknown entry field {sorted(unknown)[0][:40]!r}")
    return Entry(
        **{key: _field(raw, key, kind, "" if key == "etag" else _MISSING) for key, kind in _ENTRY_TYPES.items()}
    )


def _load_json(data: bytes | str, damaged: str) -> Any:
    """``json.loads`` whose failures, nesting too deep for the decoder included (RFC 8259 §9 lets a
    parser limit the depth), are all BackupError."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BackupError(f"{damaged}: {reason}") from None


_FORMAT_NAME = "sealmail-backup-manifest"
_MAC_LABEL = b"sealmail backup manifest v2\n"


def _mac(key: bytes, prefix: str, run: str, text: bytes) -> str:
    message = _MAC_LABEL + prefix.encode() + b"\n" + run.encode() + b"\n" + text
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_manifest(manifest: Manifest, key: bytes, prefix: str) -> bytes:
    """The stored form of a manifest: its JSON text with a MAC (see the module docstring)."""
    text = manifest.to_json()
    wrapper = {
        "format": _FORMAT_NAME,
        "version": 2,
        "mac": _mac(key, prefix, manifest.run, text),
        "manifest": text.decode(),
    }
    return json.dumps(wrapper, indent=1, ensure_ascii=False).encode()


def open_manifest(data: bytes, key: bytes, prefix: str, run: str) -> Manifest:
    """The manifest of ``run`` under ``prefix``, only if its MAC verifies with ``key``."""
    wrapper = _load_json(data, f"the manifest of run {run} is damaged")
    if not isinstance(wrapper, dict) or wrapper.get("format") != _FORMAT_NAME:
        raise BackupError(
            f"the manifest of run {run} carries no MAC (made before manifests were authenticated, or "
            "written by someone else): refusing to trust it; make a new backup"
        )
    text, mac = wrapper.get("manifest"), wrapper.get("mac")
    if not isinstance(text, str) or not isinstance(mac, str):
        raise BackupError(f"the manifest of run {run} is damaged: no manifest text or MAC")
    raw = text.encode()
    if not hmac.compare_digest(_mac(key, prefix, run, raw), mac):
        raise BackupError(
            f"the manifest of run {run} is not authentic: its MAC does not verify with this operator key "
            "(a different key, or the manifest was changed in the bucket); nothing was restored from it"
        )
    manifest = Manifest.from_json(raw)
    if manifest.run != run:
        raise BackupError(f"the manifest of run {run} names run {manifest.run}: refusing it")
    return manifest


def read_unverified(data: bytes) -> Manifest:
    """A manifest without checking its MAC: only for what cannot hurt (retention's object list)."""
    wrapper = _load_json(data, "a manifest is damaged")
    if isinstance(wrapper, dict) and wrapper.get("format") == _FORMAT_NAME:
        return Manifest.from_json(str(wrapper.get("manifest", "")).encode())
    return Manifest.from_json(data)


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
