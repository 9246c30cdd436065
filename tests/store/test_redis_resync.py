"""The process's one Redis subscriber: shared by the change bus and the revocation bus, subscribing
again by itself after its connection drops, and telling its users to re-check (pub/sub is
at-most-once: Redis delivers a PUBLISH only to connections subscribed at that moment, so whatever
was published in the gap is gone; see the PUBLISH and SUBSCRIBE command docs)."""

from __future__ import annotations

import asyncio

import redis

from sealmail.net.redisconn import Subscriber
from sealmail.services import revocation
from sealmail.store import events as ev


def _kill_pubsub_connections(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.client_kill_filter(_type="pubsub"))
    finally:
        client.close()


async def _wait(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _next_of(sub: ev.Subscription, kind: type[ev.ChangeEvent], timeout: float = 10.0) -> ev.ChangeEvent:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await sub.get(timeout=max(0.01, deadline - loop.time()))
        assert event is not None, f"no {kind.__name__} in time"
        if isinstance(event, kind):
            return event


async def test_change_bus_and_revocations_share_one_pubsub_connection(redis_url) -> None:
    """One subscriber per process: both buses' channels on a single Redis pub/sub connection."""
    redis.Redis.from_url(redis_url).close()
    subscriber = Subscriber(redis_url)
    bus = ev.RedisBus(redis_url, subscriber)
    revocations = revocation.RedisRevocations(redis_url, subscriber)
    try:
        sub = await bus.subscribe("mbox-shared")
        await revocations.watch("alias-1", lambda e: None)
        info = redis.Redis.from_url(redis_url)
        try:
            mine = [c for c in info.client_list(_type="pubsub") if int(c["sub"]) == 2]
        finally:
            info.close()
        assert len(mine) == 1, "both channels are on one connection"
        await bus.publish(ev.FoldersChanged("mbox-shared"))
        assert isinstance(await sub.get(timeout=5), ev.FoldersChanged)
        await sub.close()
    finally:
        await revocations.close()
        await bus.close()
        await subscriber.close()


async def test_a_dropped_subscription_comes_back_and_every_subscriber_gets_resync(redis_url) -> None:
    """Events published while the connection was down are lost (pub/sub is at-most-once): after
    subscribing again the bus hands every subscription a Resync, then carries events as before."""
    bus = ev.RedisBus(redis_url)
    publisher = ev.RedisBus(redis_url)
    try:
        sub = await bus.subscribe("mbox-resync")
        other = await bus.subscribe("mbox-other")
        assert _kill_pubsub_connections(redis_url) >= 1
        assert isinstance(await _next_of(sub, ev.Resync), ev.Resync)
        assert isinstance(await _next_of(other, ev.Resync), ev.Resync)
        # Subscribed again: live events flow.
        await _wait(lambda: bus.subscriber.connected)
        await publisher.publish(ev.FoldersChanged("mbox-resync"))
        assert isinstance(await _next_of(sub, ev.FoldersChanged), ev.FoldersChanged)
        await sub.close()
        await other.close()
    finally:
        await bus.close()
        await publisher.close()


async def test_revocations_recheck_every_session_after_subscribing_again(redis_url) -> None:
    """A revocation published in the gap is lost: the re-check right after subscribing again ends
    a session whose credential changed meanwhile."""
    bus = revocation.RedisRevocations(redis_url)
    ended: list[revocation.Revoked] = []
    still_valid = True
    try:
        await bus.watch("alias-7", ended.append, recheck=lambda: still_valid)
        still_valid = False  # the password changed while nothing reached this process
        _kill_pubsub_connections(redis_url)
        await _wait(lambda: bool(ended))
        assert ended[0].reason == revocation.STALE
    finally:
        await bus.close()
