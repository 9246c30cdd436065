"""Server-side web sessions: the cookie carries only an opaque random id (256 bits).

Kept in Redis when the process has one (any web host can serve any request), else in memory.
Redis keys are the SHA-256 of the id, so a copy of Redis holds no usable session id. A session
ends after ``web_session_seconds`` without a request; signing in replaces the id (no fixation).

Two areas, each with its own cookie and its own store of sessions (``AREAS``): the admin pages
(``COOKIE``) and the users' self-service area under ``/account`` (``ACCOUNT_COOKIE``). A request is
read with its own area's cookie only, so a user's session never reaches an admin page, an admin's
never reaches a user's page, and the CSRF token of one is no good in the other.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

COOKIE = "__Host-sealmail"  # __Host-: Secure, Path=/, no Domain (RFC 6265bis §4.1.3.2)
ACCOUNT_COOKIE = "__Host-sealmail-account"
ACCOUNT_PREFIX = "/account"  # the self-service area's paths


def area_of(path: str) -> str:
    """``account`` for the self-service area's paths, ``admin`` for everything else."""
    return "account" if path == ACCOUNT_PREFIX or path.startswith(ACCOUNT_PREFIX + "/") else "admin"


AREAS = {"admin": COOKIE, "account": ACCOUNT_COOKIE}  # area -> its cookie


def new_id() -> str:
    return secrets.token_urlsafe(32)


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    async def load(self, sid: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def save(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        raise NotImplementedError

    async def delete(self, sid: str) -> None:
        raise NotImplementedError

    async def first_use(self, key: str, ttl: int) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds (TOTP codes are single-use)."""
        raise NotImplementedError


class RedisSessions(SessionStore):
    def __init__(self, redis: Any, prefix: str = "sealmail:web") -> None:
        self.redis = redis
        self.prefix = prefix

    async def load(self, sid: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"{self.prefix}:session:{_key(sid)}")
        return json.loads(raw) if raw else None

    async def save(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        await self.redis.set(f"{self.prefix}:session:{_key(sid)}", json.dumps(data), ex=ttl)

    async def delete(self, sid: str) -> None:
        await self.redis.delete(f"{self.prefix}:session:{_key(sid)}")

    async def first_use(self, key: str, ttl: int) -> bool:
        return bool(await self.redis.set(f"{self.prefix}:once:{_key(key)}", "1", ex=ttl, nx=True))


class MemorySessions(SessionStore):
    def __init__(self) -> None:
        self.items: dict[str, tuple[float, dict[str, Any]]] = {}
        self.once: dict[str, float] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        for k in [k for k, (exp, _) in self.items.items() if exp <= now]:
            del self.items[k]
        for k in [k for k, exp in self.once.items() if exp <= now]:
            del self.once[k]

    async def load(self, sid: str) -> dict[str, Any] | None:
        self._sweep()
        found = self.items.get(_key(sid))
        return json.loads(json.dumps(found[1])) if found else None

    async def save(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        self.items[_key(sid)] = (time.monotonic() + ttl, json.loads(json.dumps(data)))

    async def delete(self, sid: str) -> None:
        self.items.pop(_key(sid), None)

    async def first_use(self, key: str, ttl: int) -> bool:
        self._sweep()
        if _key(key) in self.once:
            return False
        self.once[_key(key)] = time.monotonic() + ttl
        return True


class Session:
    """One request's view of its session; the middleware saves it and sets the cookie afterwards."""

    def __init__(self, sid: str | None, data: dict[str, Any] | None, area: str = "admin") -> None:
        self.area = area  # whose cookie and store it lives in (AREAS)
        self.sid = sid
        self.data: dict[str, Any] = data or {}
        self.old_sid: str | None = None  # to delete after a rotation
        self.changed = False
        self.ended = False

    @property
    def exists(self) -> bool:
        return self.sid is not None

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        if self.sid is None:
            self.sid = new_id()
        self.data[key] = value
        self.changed = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            self.changed = True
        return self.data.pop(key, default)

    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            self["csrf"] = token
        return token

    def rotate(self) -> None:
        """A new id for the same data (on sign-in and privilege changes) and a new CSRF token."""
        if self.sid is not None and self.old_sid is None:
            self.old_sid = self.sid
        self.sid = new_id()
        self.data["csrf"] = secrets.token_urlsafe(32)
        self.changed = True

    def end(self) -> None:
        if self.sid is not None and self.old_sid is None:
            self.old_sid = self.sid
        self.sid = None
        self.data = {}
        self.ended = True
