"""Ending an account's sessions everywhere when its credentials stop being valid.

A stolen password must stop working the moment its owner changes it, including for the sessions
signed in with it before the change (an IMAP IDLE connection can live for days). The service
operations that end an alias's right to its mailbox (a new password, by the old one, the recovery
key or a reset; the alias disabled, its mailbox taken away, the alias removed) call ``announce``
after their change is committed. That publishes one small event on a Redis pub/sub channel every
process of every host listens to (``CHANNEL``); each process's ``RevocationBus`` hands it to the
sessions and caches that registered for the account, and those end themselves the way their
protocol says (IMAP ``BYE``, POP3 a closed connection, submission ``421 4.7.0``, DAV a dropped cache
entry). Which changes revoke is decided here and in the services; how a session ends is protocol
code.

Pub/sub delivers to whoever listens at that moment, no more: a session registers first and then
re-checks its credential against the config store (``credentials.still_current``), so a change
landing between its password check and its registration is caught too. An event published while a
process's subscription was down (Redis restarted, the connection dropped) is lost, so every bus also
re-checks its sessions' credentials itself: right after it subscribes again, and every
``RECHECK_SECONDS`` as a safety net (one config-store read per session, no KDF).

Events carry only the alias id and a reason word (no address, nothing secret).
Without Redis (one process: tests, tools) the events go to this process's buses only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sealmail.net.redisconn import RedisConnector, Subscriber
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.revocation")

CHANNEL = "sealmail:revocations"

# Why an account's sessions end (logged by the sessions, sent on the channel).
PASSWORD_CHANGED = "password"  # noqa: S105 - a reason word, not a password
DISABLED = "disabled"
REMOVED = "removed"
NO_MAILBOX = "no-mailbox"
STALE = "stale"  # found by a re-check: the credential changed while no event reached this process

RECHECK_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Revoked:
    account_id: str  # the alias id
    reason: str


def encode(event: Revoked) -> str:
    return json.dumps({"account": event.account_id, "reason": event.reason}, separators=(",", ":"))


def decode(text: str | bytes) -> Revoked:
    data = json.loads(text)
    account, reason = data["account"], data["reason"]
    if not isinstance(account, str) or not isinstance(reason, str):
        raise ValueError("malformed revocation")
    return Revoked(account, reason)


Callback = Callable[[Revoked], None]
Recheck = Callable[[], bool]  # blocking (config store): whether the session may go on


class Watch:
    """One registration; ``cancel()`` (idempotent) when the session ends."""

    def __init__(self, bus: RevocationBus, account_id: str | None, callback: Callback, recheck: Recheck | None) -> None:
        self.bus, self.account_id, self.callback, self.recheck = bus, account_id, callback, recheck

    def cancel(self) -> None:
        self.bus._remove(self)


class RevocationBus(ABC):
    """A process's listener: sessions ``await watch(alias_id, callback)``; caches ``await watch(None, callback)``
    for every account. Callbacks run on the event loop that registered them and must not block."""

    def __init__(self) -> None:
        self._watches: dict[str | None, set[Watch]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def watch(self, account_id: str | None, callback: Callback, recheck: Recheck | None = None) -> Watch:
        """Register ``callback`` for the account (None: every account). ``recheck``, when given, is
        run by the periodic sweep; False ends the session as if an event had come."""
        self._loop = asyncio.get_running_loop()
        await self._start()
        w = Watch(self, account_id, callback, recheck)
        self._watches.setdefault(account_id, set()).add(w)
        if recheck is not None and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="sealmail-revocation-sweep")
        return w

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            await self.sweep()

    async def sweep(self) -> None:
        """Re-check every registered session's credential; end those no longer valid."""
        for w in [w for watches in list(self._watches.values()) for w in watches if w.recheck is not None]:
            try:
                current = await asyncio.to_thread(w.recheck)  # type: ignore[arg-type]
            except Exception:
                log.warning("revocations: a session's credential could not be re-checked", exc_info=True)
                continue
            if not current and w in self._watches.get(w.account_id, ()):
                try:
                    w.callback(Revoked(w.account_id or "", STALE))
                except Exception:
                    log.exception("a session could not be ended on revocation")

    def _remove(self, w: Watch) -> None:
        found = self._watches.get(w.account_id)
        if found is not None:
            found.discard(w)
            if not found:
                del self._watches[w.account_id]

    def watching(self, account_id: str) -> int:
        return len(self._watches.get(account_id, ()))

    def dispatch(self, event: Revoked) -> None:
        """On the bus's loop: every watch of the account, then the every-account ones."""
        for w in [*self._watches.get(event.account_id, ()), *self._watches.get(None, ())]:
            try:
                w.callback(event)
            except Exception:
                log.exception("a session could not be ended on revocation")

    def dispatch_threadsafe(self, event: Revoked) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.dispatch(event)
        else:
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.call_soon_threadsafe(self.dispatch, event)

    @abstractmethod
    async def _start(self) -> None: ...

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


# Buses without Redis in this process: ``announce`` reaches them directly.
_LOCAL: weakref.WeakSet[InProcessRevocations] = weakref.WeakSet()


class InProcessRevocations(RevocationBus):
    def __init__(self) -> None:
        super().__init__()
        _LOCAL.add(self)

    async def _start(self) -> None:
        pass


class RedisRevocations(RevocationBus):
    """``CHANNEL`` on the process's one Redis ``Subscriber`` (``net.redisconn``), shared with the
    change bus; when it subscribes again after a gap, every session's credential is re-checked."""

    def __init__(self, source: RedisConnector | str, subscriber: Subscriber | None = None) -> None:
        super().__init__()
        from sealmail.net.redisconn import Subscriber

        self._own_subscriber = subscriber is None
        self.subscriber = subscriber if subscriber is not None else Subscriber(source)
        self.subscriber.on_resync(self._resync)
        self._started = False
        self._resyncs: set[asyncio.Task[None]] = set()

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self.subscriber.subscribe(CHANNEL, self._on_message)

    def _on_message(self, data: bytes) -> None:
        try:
            event = decode(data)
        except (ValueError, KeyError, TypeError):
            log.warning("revocations: ignored a malformed event")
            return
        self.dispatch(event)

    def _resync(self) -> None:
        # Subscribed again: events published meanwhile are lost, so look for yourself.
        task = asyncio.create_task(self.sweep(), name="sealmail-revocation-resync")
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def close(self) -> None:
        await super().close()
        for task in list(self._resyncs):
            task.cancel()
        if self._own_subscriber:
            await self.subscriber.close()


def make_bus(settings: Settings, subscriber: Subscriber | None = None) -> RevocationBus:
    from sealmail.net.redisconn import connector

    found = connector(settings)
    if found is not None:
        return RedisRevocations(found, subscriber)
    return InProcessRevocations()


def announce(settings: Settings, account_id: str, reason: str) -> None:
    """Tell every process that ``account_id``'s sessions must end (blocking; call after the change is
    committed). A Redis failure is logged, not raised: the change itself stands, and sessions
    registered later re-check the config store."""
    event = Revoked(account_id, reason)
    for bus in list(_LOCAL):
        bus.dispatch_threadsafe(event)
    from sealmail.net.redisconn import connector

    found = connector(settings)
    if found is None:
        return
    import redis

    client = found.sync_client(socket_timeout=5, socket_connect_timeout=5)
    try:
        client.publish(CHANNEL, encode(event))
    except redis.RedisError:
        log.error("could not announce the end of an account's sessions (alias %s): Redis failed", account_id)
    finally:
        client.close()
