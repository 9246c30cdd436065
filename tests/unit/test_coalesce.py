"""``net.coalesce.Coalescer``: what is submitted while a send is on its way goes in the next send."""

from __future__ import annotations

import asyncio

import pytest

from sealmail.net.coalesce import Coalescer


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_on = fail_on

    async def send(self, items: list[str]) -> None:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_on is not None and self.fail_on in items:
            raise ConnectionError(f"refused {self.fail_on}")


async def test_a_lone_submission_is_sent_at_once() -> None:
    recorder = Recorder()
    coalescer: Coalescer[str] = Coalescer(recorder.send)
    await asyncio.wait_for(coalescer.submit(["a"]), 1)
    assert recorder.batches == [["a"]]


async def test_submissions_made_while_a_send_is_in_flight_share_the_next() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer: Coalescer[str] = Coalescer(recorder.send)
    first = asyncio.create_task(coalescer.submit(["a"]))
    await asyncio.sleep(0)  # the first send starts and waits
    later = [asyncio.create_task(coalescer.submit([f"b{i}", f"c{i}"])) for i in range(5)]
    await asyncio.sleep(0)
    assert not first.done(), "returned before its send finished"
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 1)
    assert recorder.batches == [["a"], [x for i in range(5) for x in (f"b{i}", f"c{i}")]]
    assert coalescer.sends == 2


async def test_a_failed_send_fails_every_submission_in_it_and_the_next_batch_goes_on() -> None:
    recorder = Recorder(fail_on="bad")
    recorder.release.clear()
    coalescer: Coalescer[str] = Coalescer(recorder.send)
    blocker = asyncio.create_task(coalescer.submit(["first"]))
    await asyncio.sleep(0)
    doomed = [asyncio.create_task(coalescer.submit([x])) for x in ("bad", "unlucky")]
    await asyncio.sleep(0)
    recorder.release.set()
    await blocker
    for task in doomed:
        with pytest.raises(ConnectionError, match="refused bad"):
            await task
    await asyncio.wait_for(coalescer.submit(["fine"]), 1)
    assert recorder.batches[-1] == ["fine"]


async def test_a_cancelled_caller_leaves_its_items_in_the_send_others_wait_on() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer: Coalescer[str] = Coalescer(recorder.send)
    blocker = asyncio.create_task(coalescer.submit(["first"]))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(coalescer.submit(["x"]))
    patient = asyncio.create_task(coalescer.submit(["y"]))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(blocker, patient), 1)
    assert recorder.batches == [["first"], ["x", "y"]]
    await coalescer.drain()


@pytest.mark.parametrize("steps", [1, 3], ids=["before-it-started", "while-sending"])
async def test_cancelling_the_send_tells_its_callers_it_was_not_sent(steps: int) -> None:
    """The process stops while a batch is on its way: its callers must not believe it arrived."""
    recorder = Recorder()
    recorder.release.clear()
    coalescer: Coalescer[str] = Coalescer(recorder.send)
    waiting = asyncio.create_task(coalescer.submit(["a"]))
    for _ in range(steps):
        await asyncio.sleep(0)
    assert coalescer._sender is not None
    assert len(recorder.batches) == (steps > 1)
    coalescer._sender.cancel()
    with pytest.raises(ConnectionError, match="cancelled"):
        await asyncio.wait_for(waiting, 1)
