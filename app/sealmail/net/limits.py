"""Failed-login throttling shared by every component (IMAP, POP3, submission, web), kept in Redis.

Per IP and per account, failures are counted in a sliding window; past the limit, further
attempts are refused until the window has passed, without running Argon2 (so a password-guessing
client cannot use the server's CPU either). Success clears the account's counter.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    per_ip: int = 10  # failures per window from one address
    per_account: int = 5  # failures per window against one account
    window_seconds: int = 900


class LoginLimiter:
    """``await limiter.allowed(ip, account)`` before checking a password; report the outcome after."""

    def __init__(self, redis: Any, policy: LimitPolicy | None = None, prefix: str = "sealmail:login") -> None:
        self.redis = redis
        self.policy = policy or LimitPolicy()
        self.prefix = prefix

    def _keys(self, ip: str, account: str | None) -> list[tuple[str, int]]:
        keys = [(f"{self.prefix}:ip:{ip}", self.policy.per_ip)]
        if account:
            # The account is hashed: Redis never holds addresses in clear.
            digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
            keys.append((f"{self.prefix}:acct:{digest}", self.policy.per_account))
        return keys

    async def allowed(self, ip: str, account: str | None) -> bool:
        now = time.time()
        for key, limit in self._keys(ip, account):
            await self.redis.zremrangebyscore(key, 0, now - self.policy.window_seconds)
            if await self.redis.zcard(key) >= limit:
                return False
        return True

    async def failed(self, ip: str, account: str | None) -> None:
        now = time.time()
        for key, _ in self._keys(ip, account):
            await self.redis.zadd(key, {f"{now:.6f}-{secrets.token_hex(4)}": now})
            await self.redis.expire(key, self.policy.window_seconds)

    async def succeeded(self, ip: str, account: str) -> None:
        for key, _ in self._keys(ip, account)[1:]:
            await self.redis.delete(key)


class _MemorySortedSets:
    """The few Redis sorted-set commands the limiter uses, for a process without Redis (tests, tools)."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, float]] = {}

    async def zremrangebyscore(self, key: str, low: float, high: float) -> None:
        members = self.sets.get(key, {})
        for member in [m for m, score in members.items() if low <= score <= high]:
            del members[member]

    async def zcard(self, key: str) -> int:
        return len(self.sets.get(key, {}))

    async def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self.sets.setdefault(key, {}).update(mapping)

    async def expire(self, key: str, seconds: int) -> None:
        pass

    async def delete(self, key: str) -> None:
        self.sets.pop(key, None)


def memory_limiter(policy: LimitPolicy | None = None) -> LoginLimiter:
    return LoginLimiter(_MemorySortedSets(), policy)
