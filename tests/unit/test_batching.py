"""The asyncio micro-batcher (the profile reads): concurrent requests share one handler
call, and `in_flight` handler calls may run at once."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.batching import MicroBatcher


class Held:
    """A handler whose calls wait until released; it records each call's items."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        await self.release.wait()
        return [item * 10 for item in items]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@asynccontextmanager
async def running(batcher: MicroBatcher) -> AsyncIterator[MicroBatcher]:
    batcher.start()
    try:
        yield batcher
    finally:
        await batcher.stop()


@pytest.mark.parametrize("in_flight", [1, 2])
async def test_requests_queued_behind_a_call_are_read_together_by_the_next_free_one(
    in_flight: int,
) -> None:
    held = Held()
    async with running(MicroBatcher("test", held, max_batch=8, in_flight=in_flight)) as batcher:
        first = batcher.submit(1)
        await _settle()
        assert held.calls == [[1]]  # alone: it waited for nothing
        later = [batcher.submit(n) for n in (2, 3, 4)]
        await _settle()
        # One call at a time: the others wait for it; two: they go at once, together.
        assert held.calls == ([[1]] if in_flight == 1 else [[1], [2, 3, 4]])
        held.release.set()
        assert await first == 10
        assert await asyncio.gather(*later) == [20, 30, 40]
        assert held.calls == [[1], [2, 3, 4]]


async def test_never_more_calls_at_once_than_in_flight() -> None:
    held = Held()
    async with running(MicroBatcher("test", held, max_batch=2, in_flight=2)) as batcher:
        futures = [batcher.submit(n) for n in range(7)]
        await _settle()
        assert held.calls == [[0, 1], [2, 3]]  # two calls of max_batch; the rest wait
        held.release.set()
        assert await asyncio.gather(*futures) == [n * 10 for n in range(7)]
        assert sorted(n for call in held.calls for n in call) == list(range(7))
        assert max(len(call) for call in held.calls) <= 2


async def test_a_failed_call_fails_its_own_requests_only() -> None:
    async def handler(items: list[int]) -> list[int]:
        if 0 in items:
            raise ConnectionError("database down")
        return items

    async with running(MicroBatcher("test", handler, max_batch=1, in_flight=2)) as batcher:
        bad, good = batcher.submit(0), batcher.submit(5)
        with pytest.raises(ConnectionError):
            await bad
        assert await good == 5


async def test_stop_cancels_the_calls_under_way_and_the_queued_requests() -> None:
    held = Held()
    batcher = MicroBatcher("test", held, max_batch=1, in_flight=1)
    batcher.start()
    under_way, queued = batcher.submit(1), batcher.submit(2)
    await _settle()
    await batcher.stop()
    assert under_way.cancelled() and queued.cancelled()
