"""Failed-login throttling shared by every component (IMAP, POP3, submission, DAV, web, API), in Redis.

Per IP and per account, failures are counted in a sliding window; past the limit, further
attempts are refused until the window has passed, without running Argon2 (so a password-guessing
client cannot use the server's CPU either).

An attempt is *reserved* before the password is checked, in one atomic step (a Lua script in
Redis): the windows are trimmed, and each counter's failures plus the attempts in flight are
compared with its limit; only if all have room is the attempt added to every counter's in-flight
set. So N parallel guesses cannot all pass a check made before any of them is counted: at most the
limit reach the password check. A failure moves its reservation to the failures; success removes
it and clears the account's failures; an attempt that checked nothing is removed.

Failures lock a counter out; attempts in flight only make the next ones wait (briefly, then
retry): a mail client opening eight connections at its first sync with the right password gets
eight sessions, not three refusals. An attempt in flight longer than ``PENDING_SECONDS`` (a process
killed mid-check) no longer counts.

The account is keyed on its normalised address (``sealmail.addresses.parse_mailbox``: IDNA/UTS 46
domain, case folded, trailing dot dropped), so ``Demo@EXAMPLE.TEST.`` and a fullwidth-letter
spelling share one counter with ``demo@example.test``.
"""

from __future__ import annotations

import asyncio
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


PENDING_SECONDS = 60  # longer than any password check; an attempt in flight longer is forgotten
WAIT_SECONDS = 10.0  # how long a reservation waits for attempts in flight before giving up
_RETRY = 0.05

# The three answers of a reservation.
RESERVED, LOCKED, BUSY = 1, 0, -1

# KEYS: per counter, its failures then its in-flight set; ARGV: now, window, member, pending
# seconds, then one limit per counter. 1 reserved, 0 locked out (failures), -1 full of attempts in flight.
_RESERVE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local pending = tonumber(ARGV[4])
local busy = false
for i = 1, #KEYS, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', now - pending)
  local failures = redis.call('ZCARD', KEYS[i])
  local limit = tonumber(ARGV[4 + (i + 1) / 2])
  if failures >= limit then
    return 0
  end
  if failures + redis.call('ZCARD', KEYS[i + 1]) >= limit then
    busy = true
  end
end
if busy then
  return -1
end
for i = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[i + 1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[i + 1], pending)
end
return 1
"""

# KEYS: the failures, then the in-flight set; ARGV: now, window, member.
_FAIL = """
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


def _pending(key: str) -> str:
    return f"{key}:pending"


def account_key(account: str) -> str:
    """The text an account is counted under: its normalised address (raw text folded when not one)."""
    try:
        return parse_mailbox(account).text
    except (InvalidInput, ValueError):
        return account.strip().casefold()


class _RedisCounters:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.reserve_script = redis.register_script(_RESERVE)
        self.fail_script = redis.register_script(_FAIL)

    async def reserve(self, keys: list[tuple[str, int]], now: float, window: int, member: str) -> int:
        names = [name for key, _ in keys for name in (key, _pending(key))]
        args = [now, window, member, PENDING_SECONDS, *[limit for _, limit in keys]]
        return int(await self.reserve_script(keys=names, args=args))

    async def fail(self, key: str, now: float, window: int, member: str) -> None:
        await self.fail_script(keys=[key, _pending(key)], args=[now, window, member])

    async def release(self, key: str, member: str) -> None:
        await self.redis.zrem(_pending(key), member)

    async def clear(self, key: str) -> None:
        await self.redis.delete(key)


class _MemoryCounters:
    """The same counters in one process's memory (tests, tools without Redis); atomic as it never awaits."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, float]] = {}

    def _trimmed(self, key: str, oldest: float) -> dict[str, float]:
        members = self.sets.setdefault(key, {})
        for old in [m for m, score in members.items() if score <= oldest]:
            del members[old]
        return members

    async def reserve(self, keys: list[tuple[str, int]], now: float, window: int, member: str) -> int:
        busy = False
        for key, limit in keys:
            failures = len(self._trimmed(key, now - window))
            if failures >= limit:
                return LOCKED
            if failures + len(self._trimmed(_pending(key), now - PENDING_SECONDS)) >= limit:
                busy = True
        if busy:
            return BUSY
        for key, _ in keys:
            self.sets[_pending(key)][member] = now
        return RESERVED

    async def fail(self, key: str, now: float, window: int, member: str) -> None:
        self.sets.get(_pending(key), {}).pop(member, None)
        self.sets.setdefault(key, {})[member] = now

    async def release(self, key: str, member: str) -> None:
        self.sets.get(_pending(key), {}).pop(member, None)

    async def clear(self, key: str) -> None:
        self.sets.pop(key, None)


class Attempt:
    """A reserved login attempt, in flight until it reports how it went."""

    def __init__(self, counters: _RedisCounters | _MemoryCounters, keys: list[str], member: str, window: int) -> None:
        self._counters, self._keys, self._member, self._window = counters, keys, member, window

    async def failed(self) -> None:
        """The credentials were wrong: the attempt counts as a failure on every counter."""
        for key in self._keys:
            await self._counters.fail(key, time.time(), self._window, self._member)

    async def succeeded(self) -> None:
        """The credentials were right: the attempt is done and the account's failures are cleared."""
        for key in self._keys:
            await self._counters.release(key, self._member)
        for key in self._keys[1:]:
            await self._counters.clear(key)

    async def cancel(self) -> None:
        """Nothing was checked (no credentials given, a malformed request): the attempt is forgotten."""
        for key in self._keys:
            await self._counters.release(key, self._member)


@dataclass(frozen=True, slots=True)
class Refused:
    """No attempt: too many failures in the window (``busy`` False: locked out), or too many
    attempts of this address or account still being checked after the wait (``busy`` True: nothing
    failed, try again in a moment). Falsy, so ``if not attempt`` reads naturally."""

    busy: bool

    def __bool__(self) -> bool:
        return False

    @property
    def reason(self) -> str:
        return "too many logins in progress" if self.busy else "too many failed logins"


class LoginLimiter:
    """``attempt = await limiter.reserve(ip, account)`` before checking a password (``Refused``:
    locked out, or too busy), then ``await attempt.failed()`` / ``succeeded()`` / ``cancel()``."""

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

    async def reserve(self, ip: str, account: str | None, wait: float = WAIT_SECONDS) -> Attempt | Refused:
        """An attempt in flight, or why not: locked out, or still crowded after ``wait`` seconds."""
        keys = self._keys(ip, account)
        member = f"{time.time():.6f}-{secrets.token_hex(8)}"
        window = self.policy.window_seconds
        deadline = time.monotonic() + wait
        while (answer := await self.counters.reserve(keys, time.time(), window, member)) == BUSY:
            if time.monotonic() >= deadline:
                return Refused(busy=True)
            await asyncio.sleep(_RETRY)
        if answer == LOCKED:
            return Refused(busy=False)
        return Attempt(self.counters, [k for k, _ in keys], member, window)


def memory_limiter(policy: LimitPolicy | None = None) -> LoginLimiter:
    return LoginLimiter(_MemoryCounters(), policy)
