"""Whether the shared Redis may evict Sealmail's security state, checked when a component starts.

Redis holds state that must not vanish before its time: the login lockout counters
(``net.limits``), the single-use markers of TOTP codes (``web.sessions.first_use``) and the POP3
LOGIN-DELAY marks. They carry an expiry, so every ``volatile-*`` policy — the keys it evicts at
``maxmemory`` are exactly those with an expiry — and every ``allkeys-*`` policy can drop them under
memory pressure: a lockout resets, a TOTP code works twice. The choice made here: Redis runs with
``maxmemory-policy noeviction`` (the redis role's default). At the cap Redis then refuses writes
instead of forgetting; the limiter's write fails and the login is refused (fail closed), and the
caches that could have been evicted (DNS answers, web sessions) simply expire. Without a memory cap
(``maxmemory 0``) nothing is ever evicted, whatever the policy.

A component refuses to start on a Redis that may evict, unless the ``redis_allow_eviction`` setting
waives the check; ``sealmail status`` reports the same problem.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sealmail.net.redisconn import RedisConnector

log = logging.getLogger("sealmail.redis")

SAFE_POLICY = "noeviction"


def eviction_problem(policy: str, maxmemory: int) -> str | None:
    """A sentence saying why this configuration may lose security state, or None when it cannot."""
    if maxmemory == 0 or policy == SAFE_POLICY:
        return None
    return (
        f"Redis has maxmemory-policy {policy} with maxmemory {maxmemory} bytes: at the cap it may evict "
        "login lockout counters and single-use TOTP markers (they carry an expiry). Set maxmemory-policy "
        f"{SAFE_POLICY} (the redis role's default; setting redis_allow_eviction waives this check)"
    )


def _config_values(pairs: Any) -> tuple[str, int]:
    found = {(k.decode() if isinstance(k, bytes) else k): v for k, v in dict(pairs).items()}
    policy = found.get("maxmemory-policy", SAFE_POLICY)
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    return policy, int(found.get("maxmemory", 0))


async def check(client: Any) -> str | None:
    """The problem with this Redis (``redis.asyncio`` client), or None. A Redis that will not say (the
    CONFIG command renamed away, as some managed services do) is logged as unchecked, not refused."""
    from redis.exceptions import ResponseError

    try:
        values = {**await client.config_get("maxmemory-policy"), **await client.config_get("maxmemory")}
    except ResponseError:
        log.warning("cannot read Redis's maxmemory-policy (CONFIG is not allowed): make sure it is %s", SAFE_POLICY)
        return None
    return eviction_problem(*_config_values(values))


def check_sync(source: RedisConnector | str) -> str | None:
    """``check`` for blocking callers (``sealmail status``); an unreachable Redis is not this check's problem."""
    import redis

    from sealmail.net.redisconn import as_connector

    client = as_connector(source).sync_client(socket_timeout=5, socket_connect_timeout=5)
    try:
        values = {**client.config_get("maxmemory-policy"), **client.config_get("maxmemory")}
    except redis.RedisError:
        return None
    finally:
        client.close()
    return eviction_problem(*_config_values(values))
