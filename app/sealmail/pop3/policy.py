"""LOGIN-DELAY (RFC 2449 §6.5, §8.1.1): the minimum seconds between two POP3 logins of one account.

Kept in Redis so every POP3 process on every host applies the same delay; a process without Redis
(tests, tools) keeps it in memory. Only the account's id (a random id, hashed) is stored.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any


class LoginDelay:
    def __init__(self, redis: Any, seconds: int, prefix: str = "sealmail:pop3:login") -> None:
        self.redis = redis
        self.seconds = seconds
        self.prefix = prefix
        self._memory: dict[str, float] = {}

    def _key(self, account_id: str) -> str:
        return f"{self.prefix}:{hashlib.sha256(account_id.encode()).hexdigest()[:32]}"

    async def admit(self, account_id: str) -> bool:
        """True (and the login is recorded) unless the previous one was less than ``seconds`` ago."""
        if self.seconds <= 0:
            return True
        key = self._key(account_id)
        if self.redis is not None:
            return bool(await self.redis.set(key, b"1", nx=True, ex=self.seconds))
        now = time.monotonic()
        for stale in [k for k, until in self._memory.items() if until <= now]:
            del self._memory[stale]
        if key in self._memory:
            return False
        self._memory[key] = now + self.seconds
        return True
