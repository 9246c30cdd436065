"""Whose turn it is to upgrade: one host of a deployment at a time (a lease in the shared Redis).

Automatic upgrades run on each host from its own timer (roles/upgrade); the hosts' timers are set
apart in inventory order, and this lease makes sure two hosts never drain and restart at once even
when an upgrade runs long: a host takes the turn before it drains, gives it back when it is
serving again. The lease expires by itself (``ttl``) so a host that dies holding it blocks the
others for that long at most. A single host (no Redis) always has the turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

KEY = "sealmail:upgrade-turn"
# Delete the lease only if this holder has it (another host's turn is never ended by us).
_GIVE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@dataclass(frozen=True, slots=True)
class Turn:
    taken: bool
    holder: str | None  # who has the turn now (None: nobody, or no shared Redis)
    shared: bool  # False: a single host, nothing to coordinate

    def as_dict(self) -> dict[str, Any]:
        return {"taken": self.taken, "holder": self.holder, "shared": self.shared}


def take(client: redis.Redis | None, holder: str, ttl: int) -> Turn:
    """The turn for ``holder`` for ``ttl`` seconds if it is free or already its own (renewed)."""
    if client is None:
        return Turn(True, None, False)
    if client.set(KEY, holder, nx=True, ex=ttl):
        return Turn(True, holder, True)
    current = client.get(KEY)
    now = current.decode() if isinstance(current, bytes) else current
    if now == holder:
        client.expire(KEY, ttl)
        return Turn(True, holder, True)
    if now is None:  # it expired between the two calls: try once more
        return take(client, holder, ttl)
    return Turn(False, now, True)


def give(client: redis.Redis | None, holder: str) -> bool:
    """End ``holder``'s turn; False if it did not have it (expired, or another host's)."""
    if client is None:
        return True
    return bool(client.eval(_GIVE, 1, KEY, holder))
