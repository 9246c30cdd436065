"""Failed-login throttling shared by every component (IMAP, POP3, submission, DAV, web, API), in Redis.

Per IP and per account, failures are counted in a sliding window; past the limit, further
attempts are refused until the window has passed, without running Argon2 (so a password-guessing
client cannot use the server's CPU either).

An attempt is *reserved* before the password is checked, in one atomic step (a Lua script in
Redis): the window is trimmed, every counter is compared with its limit, and only if all have room
is the attempt added to all of them. So N parallel guesses cannot all pass a check made before any
of them is counted: at most the limit reach the password check. A failure keeps its reservation;
success refunds it and clears the account's counter; an attempt that checked nothing is refunded.

The account is keyed on its normalised address (``sealmail.addresses.parse_mailbox``: IDNA/UTS 46
domain, case folded, trailing dot dropped), so ``Demo@EXAMPLE.TEST.`` and a fullwidth-letter
spelling share one counter with ``demo@example.test``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sealmail.addresses import parse_mailbox
from sealmail.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    per_ip: int = 10  # failures per window from one address
    per_account: int = 5  # failures per window against one account
    window_seconds: int = 900


# KEYS: the counters; ARGV: now, window, member, then one limit per key. 1 when reserved, else 0.
_RESERVE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('EXPIRE', key, math.ceil(window))
end
return 1
"""


def account_key(account: str) -> str:
    """The text an account is counted under: its normalised address (raw text folded when not one)."""
    try:
        return parse_mailbox(account).text
    except (InvalidInput, ValueError):
        return account.strip().casefold()


class _RedisCounters:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.script = redis.register_script(_RESERVE)

    async def reserve(self, keys: list[tuple[str, int]], now: float, window: int, member: str) -> bool:
        names = [k for k, _ in keys]
        return bool(await self.script(keys=names, args=[now, window, member, *[limit for _, limit in keys]]))

    async def remove(self, key: str, member: str) -> None:
        await self.redis.zrem(key, member)

    async def delete(self, key: str) -> None:
        await self.redis.delete(key)


class _MemoryCounters:
    """The same counters in one process's memory (tests, tools without Redis); atomic as it never awaits."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, float]] = {}

    async def reserve(self, keys: list[tuple[str, int]], now: float, window: int, member: str) -> bool:
        for key, limit in keys:
            members = self.sets.setdefault(key, {})
            for old in [m for m, score in members.items() if score <= now - window]:
                del members[old]
            if len(members) >= limit:
                return False
        for key, _ in keys:
            self.sets[key][member] = now
        return True

    async def remove(self, key: str, member: str) -> None:
        self.sets.get(key, {}).pop(member, None)

    async def delete(self, key: str) -> None:
        self.sets.pop(key, None)


class Attempt:
    """A reserved login attempt: report how it went (a failure keeps the reservation)."""

    def __init__(self, counters: _RedisCounters | _MemoryCounters, keys: list[str], member: str) -> None:
        self._counters, self._keys, self._member = counters, keys, member

    async def failed(self) -> None:
        """The credentials were wrong: the reservation stays, counted as the failure."""

    async def succeeded(self) -> None:
        """The credentials were right: the address's slot is refunded and the account's failures cleared."""
        await self._counters.remove(self._keys[0], self._member)
        for key in self._keys[1:]:
            await self._counters.delete(key)

    async def cancel(self) -> None:
        """Nothing was checked (no credentials given, a malformed request): the slots are refunded."""
        for key in self._keys:
            await self._counters.remove(key, self._member)


class LoginLimiter:
    """``attempt = await limiter.reserve(ip, account)`` before checking a password (None: locked out),
    then ``await attempt.failed()`` / ``succeeded()`` / ``cancel()``."""

    def __init__(self, redis: Any, policy: LimitPolicy | None = None, prefix: str = "sealmail:login") -> None:
        self.counters = redis if isinstance(redis, _MemoryCounters) else _RedisCounters(redis)
        self.policy = policy or LimitPolicy()
        self.prefix = prefix

    def _keys(self, ip: str, account: str | None) -> list[tuple[str, int]]:
        keys = [(f"{self.prefix}:ip:{ip}", self.policy.per_ip)]
        if account and account.strip():
            # The account is hashed: Redis never holds addresses in clear.
            digest = hashlib.sha256(account_key(account).encode()).hexdigest()[:32]
            keys.append((f"{self.prefix}:acct:{digest}", self.policy.per_account))
        return keys

    async def reserve(self, ip: str, account: str | None) -> Attempt | None:
        keys = self._keys(ip, account)
        member = f"{time.time():.6f}-{secrets.token_hex(8)}"
        if not await self.counters.reserve(keys, time.time(), self.policy.window_seconds, member):
            return None
        return Attempt(self.counters, [k for k, _ in keys], member)


def memory_limiter(policy: LimitPolicy | None = None) -> LoginLimiter:
    return LoginLimiter(_MemoryCounters(), policy)
