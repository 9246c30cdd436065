"""Per-alias sending limits of submission: messages and recipients in any hour (a sliding window).

A compromised account must not spray mail from our domains, and a person hardly ever sends more
than a few dozen messages an hour; ``submission_max_messages_per_hour`` and
``submission_max_recipients_per_hour`` bound what one signed-in alias can send (0: no limit).

What counts is what was *accepted*: each message that got its ``250`` after DATA is one entry —
its time and its number of recipients — in the alias's window. A message refused (by rspamd, by a
bad From:, by the limits themselves) costs nothing. The window slides: an entry leaves it an hour
after it came, and the reply that refuses says when the window has room again.

Where submission asks (``smtp.submission``):

* MAIL FROM: the alias has already sent its messages for the hour -> ``451 4.7.1``;
* RCPT TO: this recipient would take the alias past its recipients for the hour -> ``451 4.7.1``
  for this recipient only (the client sends the rest later; RFC 5321 §4.5.3.1.10's ``452 4.5.3`` is
  kept for too many recipients in *one* transaction, ``mx_max_recipients``);
* after DATA, just before the ``250``: the entry is added in one atomic step that checks both
  limits again (``record``), so sessions on several hosts at once cannot together pass a limit
  that each checked alone; if the message then cannot be queued, the entry is taken back.

The entries live in the shared Redis (every submission host counts together), one sorted set per
alias keyed by its random id (never its address), ``<queue id>:<recipients>`` scored by time, and
an index of the aliases that sent in the last hour for the web admin's list (``limited``). Without
Redis (one process on its own) the same entries stay in the process's memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sealmail.errors import NotFound

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

WINDOW_SECONDS = 3600

# KEYS: the alias's entries, the index of aliases that sent; ARGV: now, window, member, recipients,
# max messages, max recipients (0: none), alias id. 1: recorded; 0: a limit would be passed.
_RECORD = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1)
local recipients = 0
for _, member in ipairs(entries) do
  recipients = recipients + tonumber(string.match(member, ':(%d+)$'))
end
local adding = tonumber(ARGV[4])
local max_messages = tonumber(ARGV[5])
local max_recipients = tonumber(ARGV[6])
if (max_messages > 0 and #entries + 1 > max_messages) or (max_recipients > 0 and recipients + adding > max_recipients) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('EXPIRE', KEYS[2], window)
return 1
"""


@dataclass(frozen=True, slots=True)
class HourlyLimits:
    messages: int  # 0: no limit
    recipients: int  # 0: no limit
    window: int = WINDOW_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> HourlyLimits:
        return cls(settings.submission_max_messages_per_hour, settings.submission_max_recipients_per_hour)

    @property
    def enabled(self) -> bool:
        return bool(self.messages or self.recipients)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one alias sent in the window: ``(time, recipients)`` of each accepted message, oldest first."""

    sent: tuple[tuple[float, int], ...] = ()

    @property
    def messages(self) -> int:
        return len(self.sent)

    @property
    def recipients(self) -> int:
        return sum(n for _, n in self.sent)

    def may_send(self, limits: HourlyLimits) -> bool:
        """Room for one more message (MAIL FROM)."""
        return not limits.messages or self.messages < limits.messages

    def may_add(self, limits: HourlyLimits, recipients: int) -> bool:
        """Room for ``recipients`` more recipients (RCPT TO: those of this transaction so far, plus one)."""
        return not limits.recipients or self.recipients + recipients <= limits.recipients

    def message_room_at(self, limits: HourlyLimits) -> float:
        """When the window has room for one more message again."""
        if self.may_send(limits):
            return 0.0
        return self.sent[self.messages - limits.messages][0] + limits.window

    def recipient_room_at(self, limits: HourlyLimits, recipients: int) -> float:
        """When the window has room for ``recipients`` more recipients again (entries leave oldest first)."""
        over = self.recipients + recipients - limits.recipients
        if not limits.recipients or over <= 0:
            return 0.0
        for at, n in self.sent:
            over -= n
            if over <= 0:
                return at + limits.window
        return math.inf  # more than the limit in one message: never (``mx_max_recipients`` prevents it)

    def at_limit(self, limits: HourlyLimits) -> bool:
        """No room for another message, or for another recipient (the web admin's list)."""
        return not self.may_send(limits) or not self.may_add(limits, 1)

    def free_at(self, limits: HourlyLimits) -> float:
        """When a message to one recipient may be sent again."""
        return max(self.message_room_at(limits), self.recipient_room_at(limits, 1))


def clock(at: float) -> str:
    """``HH:MM UTC``, rounded up to the minute (a client that waits until then is not refused again)."""
    if not math.isfinite(at):
        return "later"
    return datetime.fromtimestamp(math.ceil(at / 60) * 60, UTC).strftime("%H:%M UTC")


def messages_refusal(usage: Usage, limits: HourlyLimits) -> str:
    when = clock(usage.message_room_at(limits))
    return f"451 4.7.1 Sending limit reached: {limits.messages} messages an hour; try again after {when}"


def recipients_refusal(usage: Usage, limits: HourlyLimits, recipients: int) -> str:
    when = clock(usage.recipient_room_at(limits, recipients))
    return f"451 4.7.1 Sending limit reached: {limits.recipients} recipients an hour; try again after {when}"


def _member(queue_id: str, recipients: int) -> str:
    return f"{queue_id}:{recipients}"


def _entries(pairs: list[tuple[Any, float]]) -> Usage:
    sent = []
    for member, at in pairs:
        text = member.decode() if isinstance(member, bytes) else str(member)
        sent.append((float(at), int(text.rsplit(":", 1)[1])))
    return Usage(tuple(sorted(sent)))


class SendCounter:
    """The accepted messages of every alias in the window, in Redis (``redis``) or in memory (None)."""

    def __init__(self, redis: Any, limits: HourlyLimits, prefix: str = "sealmail:send") -> None:
        self.redis = redis
        self.limits = limits
        self.prefix = prefix
        self._memory: dict[str, dict[str, float]] = {}
        self._record = redis.register_script(_RECORD) if redis is not None else None

    def _key(self, alias_id: str) -> str:
        return f"{self.prefix}:alias:{alias_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:active"

    async def usage(self, alias_id: str, now: float | None = None) -> Usage:
        oldest = (time.time() if now is None else now) - self.limits.window
        if self.redis is None:
            entries = self._memory.get(alias_id, {})
            return _entries([(m, at) for m, at in entries.items() if at > oldest])
        pairs = await self.redis.zrangebyscore(self._key(alias_id), f"({oldest}", "+inf", withscores=True)
        return _entries(pairs)

    async def record(self, alias_id: str, queue_id: str, recipients: int, now: float | None = None) -> Usage | None:
        """Count an accepted message, unless it would pass a limit: then the usage that refused it."""
        now = time.time() if now is None else now
        limits = self.limits
        member = _member(queue_id, recipients)
        if self._record is None:
            # One process, no await until the entry is in: atomic as the Lua script is in Redis.
            entries = self._memory.setdefault(alias_id, {})
            for old in [m for m, at in entries.items() if at <= now - limits.window]:
                del entries[old]
            usage = _entries(list(entries.items()))
            if not usage.may_send(limits) or not usage.may_add(limits, recipients):
                return usage
            entries[member] = now
            return None
        args = [now, limits.window, member, recipients, limits.messages, limits.recipients, alias_id]
        if int(await self._record(keys=[self._key(alias_id), self._index], args=args)):
            return None
        return await self.usage(alias_id, now)

    async def forget(self, alias_id: str, queue_id: str, recipients: int) -> None:
        """Take back an entry whose message was not queued after all."""
        member = _member(queue_id, recipients)
        if self.redis is None:
            self._memory.get(alias_id, {}).pop(member, None)
        else:
            await self.redis.zrem(self._key(alias_id), member)

    async def limited(self, now: float | None = None) -> list[tuple[str, Usage]]:
        """The aliases at one of their limits now (alias id, usage), those limited longest first."""
        now = time.time() if now is None else now
        if self.redis is None:
            ids = list(self._memory)
        else:
            raw = await self.redis.zrangebyscore(self._index, f"({now - self.limits.window}", "+inf")
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw]
        found = [(alias_id, await self.usage(alias_id, now)) for alias_id in ids]
        limited = [(alias_id, usage) for alias_id, usage in found if usage.at_limit(self.limits)]
        return sorted(limited, key=lambda item: item[1].free_at(self.limits))


# ---- what the web admin and the API show ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitedAlias:
    """An alias at one of its hourly limits, or blocked from sending by an administrator."""

    alias_id: str
    address: str | None  # None: the alias was removed since it sent
    messages: int
    recipients: int
    free_at: datetime | None  # when it may send to one recipient again; None: not limited now
    blocked: bool

    @property
    def free_clock(self) -> str:
        """``free_at`` as the SMTP refusal words it (``HH:MM UTC``, rounded up)."""
        return clock(self.free_at.timestamp()) if self.free_at is not None else "—"


def blocked_ids(store: ConfigStore) -> list[str]:
    """The aliases an administrator stopped sending. Blocking (config store)."""
    return [alias.id for alias in store.list_aliases() if alias.sending_blocked]


def describe(store: ConfigStore, limits: HourlyLimits, usages: dict[str, Usage]) -> list[LimitedAlias]:
    """Aliases with what they sent this hour, their addresses and whether they are blocked: those at a
    limit first (the soonest free first), then the others by address. Blocking (config store)."""
    from sealmail.services.aliases import alias_address

    out: list[LimitedAlias] = []
    for alias_id, usage in usages.items():
        try:
            alias = store.get_alias(alias_id)
        except NotFound:
            address, blocked = None, False
        else:
            address, blocked = alias_address(store, alias), alias.sending_blocked
        free = usage.free_at(limits) if usage.at_limit(limits) else math.nan
        at = datetime.fromtimestamp(free, UTC) if math.isfinite(free) else None
        out.append(LimitedAlias(alias_id, address, usage.messages, usage.recipients, at, blocked))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda a: (a.free_at is None, a.free_at or far, a.address or ""))


async def listing(
    store: ConfigStore, redis: Any, settings: Settings, call: Callable[..., Awaitable[Any]]
) -> list[LimitedAlias]:
    """What the web admin's Sending page and ``GET /v1/sending`` show: the aliases at a limit now and
    the blocked ones. ``call`` runs a blocking config-store function off the event loop. Without Redis
    the counts are each submission process's own, out of sight: only blocked aliases are listed."""
    limits = HourlyLimits.from_settings(settings)
    counter = SendCounter(redis, limits) if redis is not None else None
    usages = dict(await counter.limited()) if counter is not None and limits.enabled else {}
    for alias_id in await call(blocked_ids, store):
        if alias_id not in usages:
            usages[alias_id] = await counter.usage(alias_id) if counter is not None else Usage()
    found: list[LimitedAlias] = await call(describe, store, limits, usages)
    return found
