"""Submission's hourly sending limits (``sealmail.services.sendlimits``): the window's arithmetic, and
one contract for both counters — a real Redis (the Lua script) and a process's memory — driven with
explicit clocks, so the sliding hour is tested without waiting for it."""

from __future__ import annotations

import pytest

from sealmail.services.sendlimits import HourlyLimits, SendCounter, Usage, clock, messages_refusal, recipients_refusal

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
LIMITS = HourlyLimits(messages=3, recipients=5)


def test_room_comes_back_as_the_oldest_entries_leave_the_hour() -> None:
    usage = Usage(((T0, 2), (T0 + 100, 1), (T0 + 200, 2)))
    assert (usage.messages, usage.recipients) == (3, 5)
    assert not usage.may_send(LIMITS)
    assert usage.message_room_at(LIMITS) == T0 + 3600  # one message leaves: room for one
    assert not usage.may_add(LIMITS, 1)
    assert usage.recipient_room_at(LIMITS, 1) == T0 + 3600  # the first entry's 2 recipients leave
    assert usage.recipient_room_at(LIMITS, 3) == T0 + 100 + 3600  # 3 more need the second one gone too
    assert usage.free_at(LIMITS) == T0 + 3600


def test_zero_means_no_limit() -> None:
    usage = Usage(tuple((T0 + i, 50) for i in range(500)))
    free = HourlyLimits(messages=0, recipients=0)
    assert not free.enabled
    assert usage.may_send(free)
    assert usage.may_add(free, 1000)
    assert not usage.at_limit(free)


def test_the_reply_says_when_rounded_up_to_the_minute() -> None:
    assert clock(T0 + 3600) == "09:00 UTC"
    assert clock(T0 + 3601) == "09:01 UTC"  # waiting until 09:00 would be refused again
    usage = Usage(((T0 + 30, 1), (T0 + 90, 1), (T0 + 150, 3)))
    assert messages_refusal(usage, LIMITS) == (
        "451 4.7.1 Sending limit reached: 3 messages an hour; try again after 09:01 UTC"
    )
    assert recipients_refusal(usage, LIMITS, 1) == (
        "451 4.7.1 Sending limit reached: 5 recipients an hour; try again after 09:01 UTC"
    )


@pytest.fixture(params=["memory", "redis"])
async def counter(request):
    if request.param == "memory":
        yield SendCounter(None, LIMITS)
        return
    import redis.asyncio as aioredis

    url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/6"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    yield SendCounter(client, LIMITS)
    await client.aclose()


async def test_record_refuses_what_would_pass_a_limit_and_counts_nothing_then(counter) -> None:
    assert await counter.record("a1", "q1", 2, now=T0) is None
    assert await counter.record("a1", "q2", 2, now=T0 + 10) is None
    refused = await counter.record("a1", "q3", 2, now=T0 + 20)  # 6 recipients > 5
    assert refused is not None
    assert (refused.messages, refused.recipients) == (2, 4)
    assert await counter.record("a1", "q4", 1, now=T0 + 30) is None  # exactly 5
    assert await counter.record("a1", "q5", 0, now=T0 + 40) is not None  # a fourth message > 3
    usage = await counter.usage("a1", now=T0 + 50)
    assert (usage.messages, usage.recipients) == (3, 5)
    assert (await counter.usage("other", now=T0 + 50)).messages == 0  # per alias


async def test_the_hour_slides_and_a_forgotten_entry_frees_its_room(counter) -> None:
    for n in range(3):
        assert await counter.record("a1", f"q{n}", 1, now=T0 + n) is None
    assert await counter.record("a1", "late", 1, now=T0 + 3599) is not None
    assert await counter.record("a1", "next", 1, now=T0 + 3600.5) is None  # q0 has left the window
    await counter.forget("a1", "next", 1)  # not queued after all
    assert (await counter.usage("a1", now=T0 + 3600.5)).messages == 2


async def test_limited_lists_the_aliases_at_a_limit_soonest_free_first(counter) -> None:
    for n in range(3):
        await counter.record("busy", f"b{n}", 1, now=T0 + 100 + n)
    await counter.record("wide", "w", 5, now=T0)
    await counter.record("calm", "c", 1, now=T0)
    found = await counter.limited(now=T0 + 200)
    assert [alias_id for alias_id, _ in found] == ["wide", "busy"]
    assert await counter.limited(now=T0 + 3700) == []
