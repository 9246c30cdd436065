"""After a delivery is durable, concurrent deliveries share their Redis round trips (real Redis).

The MX remembers each (message, alias) pair for a day, so a sender's retry after a partial failure
is not stored twice, and announces each spool that got mail to the sessions holding its key. Both
are sent in batches (``net.coalesce``): every key is remembered and every spool announced, in fewer
round trips than deliveries."""

from __future__ import annotations

import asyncio

import redis

from sealmail.smtp.inbound import DEDUP_SECONDS, Deduplicator
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore


async def test_concurrent_deliveries_remember_every_key_in_fewer_round_trips(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    dedup = Deduplicator(client)
    keys = [[f"bookkeeping-{i}-{j}" for j in range(2)] for i in range(30)]
    try:
        await asyncio.gather(*(dedup.remember_many(k) for k in keys))
        flat = [k for pair in keys for k in pair]
        assert await dedup.seen_many(flat) == set(flat)
        assert 1 <= dedup._remembering.sends < len(keys), "every delivery made its own round trip"
    finally:
        await client.aclose()
    sync = redis.Redis.from_url(redis_url)
    try:
        ttl = sync.ttl(f"sealmail:inbound:{keys[-1][-1]}")
        assert DEDUP_SECONDS - 60 < ttl <= DEDUP_SECONDS
    finally:
        sync.close()


async def test_a_key_waiting_for_its_batch_already_counts_as_delivered(redis_url: str) -> None:
    """A retry that arrives while the first copy's key is still on its way to Redis is not stored
    twice: keys count from the moment they are handed over, not from the moment Redis has them."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    dedup = Deduplicator(client)
    try:
        first = asyncio.create_task(dedup.remember_many(["in-flight-1"]))
        queued = asyncio.create_task(dedup.remember_many(["in-flight-2"]))  # waits for the next batch
        await asyncio.sleep(0)
        assert await dedup.seen_many(["in-flight-1", "in-flight-2", "never"]) >= {"in-flight-1", "in-flight-2"}
        await asyncio.gather(first, queued)
        assert await dedup.seen_many(["in-flight-1", "in-flight-2", "never"]) == {"in-flight-1", "in-flight-2"}
    finally:
        await client.aclose()


async def test_concurrent_announcements_reach_every_spools_sessions_in_fewer_round_trips(tmp_path, redis_url) -> None:
    bus = ev.RedisBus(redis_url)
    store = MailStore(tmp_path, bus)
    try:
        hot = await bus.subscribe("mbox-hot")
        quiet = await bus.subscribe("mbox-quiet")
        await asyncio.gather(*(store.spool_appended("mbox-hot") for _ in range(20)), store.spool_appended("mbox-quiet"))
        assert isinstance(await hot.get(timeout=5), ev.SpoolAppended)
        assert isinstance(await quiet.get(timeout=5), ev.SpoolAppended)
        assert 1 <= store._announcements.sends < 21, "every delivery made its own round trip"
        await hot.close()
        await quiet.close()
    finally:
        await store.close()
        await bus.close()
