"""Change events: one contract for the in-process bus and the Redis bus (real redis-server)."""

from __future__ import annotations

import asyncio

import pytest

from sealmail.crypto import keys
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

from mailgen import message
from support import async_wait_for


async def _subscribed(bus: ev.ChangeBus, *mailbox_ids: str) -> None:
    """Wait until Redis counts the bus's subscription to each mailbox's channel (SUBSCRIBE returns
    before the server has registered it; a PUBLISH from another connection could pass it by).
    The in-process bus subscribes at once."""
    if not isinstance(bus, ev.RedisBus):
        return
    channels = [ev.channel(m) for m in mailbox_ids]

    async def registered() -> bool:
        counts = {(k.decode() if isinstance(k, bytes) else k): n for k, n in await bus._client.pubsub_numsub(*channels)}
        return all(counts.get(c, 0) >= 1 for c in channels)

    await async_wait_for(registered, timeout=10, what=f"Redis subscriptions to {channels}")


@pytest.fixture(params=["inprocess", "redis"])
async def make_bus(request, redis_url):
    made: list[ev.ChangeBus] = []

    def factory() -> ev.ChangeBus:
        bus = ev.InProcessBus() if request.param == "inprocess" else ev.RedisBus(redis_url)
        made.append(bus)
        return bus

    factory.shared = request.param == "inprocess"
    yield factory
    for bus in made:
        await bus.close()


async def test_subscribers_get_events_for_their_mailbox_only(make_bus) -> None:
    bus = make_bus()
    async with await bus.subscribe("m1") as sub, await bus.subscribe("m2") as other:
        await _subscribed(bus, "m1", "m2")
        await bus.publish(ev.MessagesAdded("m1", folder_id=3, uids=(7, 8), modseq=12))
        await bus.publish(ev.FlagsChanged("m1", folder_id=3, uids=(7,), modseq=13))
        assert await sub.get(2) == ev.MessagesAdded("m1", folder_id=3, uids=(7, 8), modseq=12)
        assert await sub.get(2) == ev.FlagsChanged("m1", folder_id=3, uids=(7,), modseq=13)
        assert await other.get(0.2) is None


async def test_every_subscriber_of_a_mailbox_hears_an_event(make_bus) -> None:
    bus = make_bus()
    subs = [await bus.subscribe("m1") for _ in range(3)]
    await _subscribed(bus, "m1")
    await bus.publish(ev.SpoolAppended("m1"))
    assert [await s.get(2) for s in subs] == [ev.SpoolAppended("m1")] * 3
    for s in subs:
        await s.close()


async def test_a_closed_subscription_hears_nothing(make_bus) -> None:
    bus = make_bus()
    sub = await bus.subscribe("m1")
    await sub.close()
    await bus.publish(ev.FoldersChanged("m1"))
    assert await sub.get(0.2) is None


async def test_events_round_trip_through_json() -> None:
    for event in (
        ev.MessagesAdded("m", 1, (1, 2), 3),
        ev.FlagsChanged("m", 1, (2,), 4),
        ev.MessagesExpunged("m", 1, (1,), 5),
        ev.FoldersChanged("m"),
        ev.SpoolAppended("m"),
        ev.CollectionsChanged("m", "calendar", 9),
    ):
        assert ev.decode_event(ev.encode_event(event)) == event


async def test_another_process_hears_of_new_mail_through_redis(tmp_path, redis_url) -> None:
    """Two buses, as in two processes: an append in one reaches an IDLE-style subscriber in the other."""
    writer_bus, reader_bus = ev.RedisBus(redis_url), ev.RedisBus(redis_url)
    found, _ = keys.new_secrets()
    store = MailStore(tmp_path, writer_bus)
    store.create("b" * 24, found.mailbox_key)
    try:
        async with await reader_bus.subscribe("b" * 24) as sub:
            await _subscribed(reader_bus, "b" * 24)
            handle = await store.open("b" * 24, found)
            result = await handle.append("INBOX", message(1))
            event = await sub.get(2)
            assert isinstance(event, ev.MessagesAdded)
            assert event.uids == (result.uid,)
            assert event.modseq == result.modseq
            await handle.store_flags("INBOX", [result.uid], "add", ["\\Seen"])
            assert isinstance(await sub.get(2), ev.FlagsChanged)
            await handle.release()
    finally:
        await store.close()
        await writer_bus.close()
        await reader_bus.close()


async def test_shared_handles_and_work_off_the_event_loop(tmp_path) -> None:
    found, _ = keys.new_secrets()
    store = MailStore(tmp_path, ev.InProcessBus())
    store.create("c" * 24, found.mailbox_key)
    try:
        first = await store.open("c" * 24, found)
        second = await store.open("c" * 24, found)
        assert first is second
        loop_thread = asyncio.get_running_loop()
        import threading

        main = threading.get_ident()
        worker = await first.run(threading.get_ident)
        assert worker != main
        assert loop_thread.is_running()
        await first.release()
        await second.release()
        assert store._open == {}
    finally:
        await store.close()


async def test_an_open_session_drains_new_sealed_mail_at_once(config, settings, account, redis_url) -> None:
    """The MX seals into the spool and publishes; the process holding the key drains within a second."""
    from sealmail.services.logins import Logins
    from sealmail.services.sessions import sign_in

    address, password = account
    mx_bus, session_bus = ev.RedisBus(redis_url), ev.RedisBus(redis_url)
    mx_store, session_store = MailStore(settings.data_dir, mx_bus), MailStore(settings.data_dir, session_bus)
    try:
        alias = config.find_alias("example.test", "exact", "rémi")
        credential = config.get_credential(alias.id)
        await mx_store.deliver_async(credential.mailbox_id, credential.public_key, message(1))  # before login
        session = await sign_in(Logins(settings), config, session_store, address, password)
        assert len(await session.mailbox.uids("INBOX")) == 1  # drained at sign-in
        async with await session_bus.subscribe(credential.mailbox_id) as watcher:
            await mx_store.deliver_async(credential.mailbox_id, credential.public_key, message(2))
            deadline = asyncio.get_running_loop().time() + 1.0
            while asyncio.get_running_loop().time() < deadline:
                event = await watcher.get(deadline - asyncio.get_running_loop().time())
                if isinstance(event, ev.MessagesAdded):
                    break
            else:
                pytest.fail("no MessagesAdded within a second of delivery")
        assert len(await session.mailbox.uids("INBOX")) == 2
        assert mx_store.spool(credential.mailbox_id).count() == 0
        await session.close()
    finally:
        await mx_store.close()
        await session_store.close()
        await mx_bus.close()
        await session_bus.close()
