"""What the MX's ``250`` waits for: the message being durable, not the bookkeeping after it.

RFC 5321 §4.1.1.4 / §6.1: after the final dot, ``250`` means the server has taken responsibility
for the message, so it must follow the fsync of the spool. Remembering that the message reached
its alias (so a sender's retry is not stored twice) and telling open sessions that sealed mail
waits are done after the append; when every action succeeded they run beside the reply instead of
before it, and this process treats a message being remembered as remembered already. When an
action failed (the reply is ``451`` and the sender will retry), what did succeed is remembered
before the reply, as the retry depends on it.

Concurrent deliveries share that bookkeeping's round trips (``net.coalesce``): every key is
remembered and every spool announced, in fewer round trips than deliveries (real Redis).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from sealmail.config.models import LogEntry
from sealmail.services import aliases, credentials, domains, resolve
from sealmail.smtp.inbound import DEDUP_SECONDS, Deduplicator, InboundDelivery, Target, dedup_keys
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

MESSAGE = b"From: <a@example.org>\r\nTo: <demo@example.test>\r\nSubject: bookkeeping\r\n\r\nbody\r\n"


class HeldRedis:
    """Redis as the dedup memory sees it, whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.release = asyncio.Event()

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.data.get(k) for k in keys]

    def pipeline(self, transaction: bool = False) -> HeldPipeline:
        return HeldPipeline(self)


class HeldPipeline:
    def __init__(self, redis: HeldRedis) -> None:
        self.redis = redis
        self.pending: list[str] = []

    async def __aenter__(self) -> HeldPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: bytes, ex: int) -> None:
        self.pending.append(key)

    async def execute(self) -> None:
        await self.redis.release.wait()
        for key in self.pending:
            self.redis.data[key] = b"1"


class App:
    def __init__(self, settings: Any, config: Any) -> None:
        self.settings = settings
        self.config = config
        self.mailstore = MailStore(settings.data_dir)
        self.redis = HeldRedis()

    async def log_event(self, entry: LogEntry) -> None:
        return None

    async def config_call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)


class FailingQueue:
    def add_many(self, jobs: list[Any]) -> None:
        raise OSError("No space left on device")


async def test_the_250_waits_for_the_fsynced_append_not_for_remembering_it_rfc5321_6_1(settings, config) -> None:
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    credentials.set_password(config, settings, "demo@example.test")
    app = App(settings, config)
    inbound = InboundDelivery(app, queue=FailingQueue())  # type: ignore[arg-type]
    alias = resolve.resolve(config, "demo@example.test").alias
    assert alias is not None
    targets = [Target("demo@example.test", alias)]
    credential = config.get_credential(alias.id)
    spool = app.mailstore.spool(credential.mailbox_id)
    try:
        outcome = await asyncio.wait_for(
            inbound.deliver([MESSAGE], mail_from="a@example.org", targets=targets, original=[MESSAGE]), 10
        )
        assert outcome.ok
        assert spool.count() == 1  # durable before deliver returned
        assert app.redis.data == {}  # Redis has not answered yet: the reply did not wait for it
        # A retry of the same message while Redis is still writing: this process knows already.
        assert await inbound.already_delivered([MESSAGE], targets) == {alias.id}
        app.redis.release.set()
        await asyncio.wait_for(inbound.close(), 10)  # the MX waits for its bookkeeping when it stops
        assert list(app.redis.data) == [f"sealmail:inbound:{key}" for key in dedup_keys([MESSAGE], targets).values()]
    finally:
        app.redis.release.set()
        await inbound.close()
        spool.close()


async def test_after_a_failed_action_what_succeeded_is_remembered_before_the_451(settings, config) -> None:
    """A store that worked beside a forward that could not be queued: the sender gets ``451`` and
    retries; the stored copy must be remembered by then, or the retry would store it twice."""
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    aliases.add_alias(config, "fwd@example.test", recipients=["someone@example.org"], storage=False)
    credentials.set_password(config, settings, "demo@example.test")
    app = App(settings, config)
    inbound = InboundDelivery(app, queue=FailingQueue())  # type: ignore[arg-type]
    stored = resolve.resolve(config, "demo@example.test").alias
    forwarded = resolve.resolve(config, "fwd@example.test").alias
    assert stored is not None
    assert forwarded is not None
    targets = [Target("demo@example.test", stored), Target("fwd@example.test", forwarded)]
    task = asyncio.create_task(
        inbound.deliver([MESSAGE], mail_from="a@example.org", targets=targets, original=[MESSAGE])
    )
    try:
        await asyncio.sleep(0.5)
        assert not task.done(), "answered before what succeeded was remembered"
        app.redis.release.set()
        outcome = await asyncio.wait_for(task, 10)
        assert not outcome.ok
        assert list(app.redis.data) == [f"sealmail:inbound:{dedup_keys([MESSAGE], targets)[stored.id]}"]
    finally:
        app.redis.release.set()
        await inbound.close()
        app.mailstore.spool(config.get_credential(stored.id).mailbox_id).close()


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
