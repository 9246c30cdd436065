"""Concurrent callers share one round trip: what is submitted while a send is on its way goes in the next.

The asynchronous sibling of ``store.groupcommit``. The MX's bookkeeping after each delivery (the
dedup keys it remembers in Redis, the new-mail announcements it publishes) would otherwise cost
every message its own round trips, and redis-py's per-call overhead is a large share of an MX
session process's CPU. Nothing waits on a timer: a lone caller is sent at once, and under load the
batches grow by themselves.

``submit`` returns once the batch holding its items was sent, or raises that batch's error. A
caller that is cancelled leaves its items in the batch: others wait on the same send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Calls ``send(items)`` with everything submitted since the previous call started."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._sender: asyncio.Task[None] | None = None
        self.sends = 0  # calls of ``send`` (for tests and statistics)

    async def submit(self, items: Iterable[T]) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(_retrieved)  # a cancelled caller's failed send is not "never retrieved"
        self._items.extend(items)
        self._waiters.append(waiter)
        if self._sender is None:
            self._sender = asyncio.create_task(self._run())
            self._sender.add_done_callback(self._ended)
        await asyncio.shield(waiter)

    async def _run(self) -> None:
        try:
            while self._waiters:
                items, self._items = self._items, []
                waiters, self._waiters = self._waiters, []
                self.sends += 1
                try:
                    await self._send(items)
                except Exception as exc:
                    _settle(waiters, exc)
                except BaseException:  # cancelled while sending: nobody may think it was sent
                    _settle(waiters, None, sent=False)
                    raise
                else:
                    _settle(waiters, None)
        finally:
            self._abandon()  # empty after a normal end; else the sender itself was cancelled (the process stops)

    def _ended(self, sender: asyncio.Task[None]) -> None:
        if self._sender is sender:  # cancelled before it ran: its own ``finally`` never did
            self._abandon()

    def _abandon(self) -> None:
        """No sender any more: whatever still waits was not sent."""
        self._sender = None
        waiters, self._waiters, self._items = self._waiters, [], []
        _settle(waiters, None, sent=False)

    async def drain(self) -> None:
        """Wait until everything submitted so far was sent (or failed)."""
        while self._sender is not None:
            await asyncio.shield(self._sender)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None, sent: bool = True) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is not None:
            waiter.set_exception(error)
        elif sent:
            waiter.set_result(None)
        else:
            waiter.set_exception(ConnectionError("the send was cancelled"))
