"""The model stage's batcher: one thread, batches taken as they queue, answers in order."""

import asyncio
import threading

import pytest

from app.threadbatch import ThreadBatcher


class Recorder:
    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.gate = gate

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        return [item * 10 for item in items]


async def test_requests_queued_while_busy_share_one_batch_and_get_their_own_answers() -> None:
    gate = threading.Event()
    handler = Recorder(gate)
    batcher = ThreadBatcher("t", handler, max_batch=64)
    batcher.start()
    first = batcher.submit(1)  # taken at once; the thread then waits on the gate
    await asyncio.sleep(0.05)
    rest = [batcher.submit(n) for n in range(2, 12)]
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [n * 10 for n in range(2, 12)]
    await batcher.stop()
    assert handler.batches == [[1], list(range(2, 12))]
    assert handler.threads == {"recsys-t"}


async def test_max_batch_caps_a_batch() -> None:
    gate = threading.Event()
    handler = Recorder(gate)
    batcher = ThreadBatcher("t", handler, max_batch=4)
    batcher.start()
    futures = [batcher.submit(n) for n in range(10)]
    gate.set()
    assert await asyncio.gather(*futures) == [n * 10 for n in range(10)]
    await batcher.stop()
    assert max(len(batch) for batch in handler.batches) <= 4
    assert [n for batch in handler.batches for n in batch] == list(range(10))


async def test_a_failing_batch_hands_its_error_to_every_request_and_the_next_batch_runs() -> None:
    calls = []

    def handler(items: list[int]) -> list[int]:
        calls.append(items)
        if 0 in items:
            raise ValueError("bad batch")
        return items

    batcher = ThreadBatcher("t", handler, max_batch=64)
    batcher.start()
    with pytest.raises(ValueError, match="bad batch"):
        await batcher.submit(0)
    assert await batcher.submit(7) == 7
    await batcher.stop()


async def test_call_runs_on_the_serving_thread_and_gone_callers_are_not_scored() -> None:
    gate = threading.Event()
    handler = Recorder(gate)
    batcher = ThreadBatcher("t", handler, max_batch=64)
    batcher.start()
    busy = batcher.submit(1)
    await asyncio.sleep(0.05)
    gone = batcher.submit(2)
    gone.cancel()
    thread_name = batcher.call(lambda: threading.current_thread().name)
    kept = batcher.submit(3)
    gate.set()
    assert (await busy, await kept) == (10, 30)
    assert await thread_name == "recsys-t"
    await batcher.stop()
    assert handler.batches == [[1], [3]]


async def test_stop_finishes_the_batch_in_hand() -> None:
    gate = threading.Event()
    batcher = ThreadBatcher("t", Recorder(gate), max_batch=64)
    batcher.start()
    running = batcher.submit(5)
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(batcher.stop())
    await asyncio.sleep(0.05)
    gate.set()
    await stopping
    assert await running == 50


async def _thread_idle(batcher: ThreadBatcher) -> None:
    for _ in range(500):  # the thread blocks on the empty queue soon after start
        if batcher._waiting:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the batcher's thread never went idle")


async def test_a_lone_request_with_the_thread_idle_runs_on_the_callers_thread() -> None:
    handler = Recorder()
    alone = [True]
    batcher = ThreadBatcher("t", handler, max_batch=64, lone=lambda: alone[0])
    batcher.start()
    await _thread_idle(batcher)
    inline = batcher.submit(4)
    assert inline.done()  # answered before the caller awaited anything
    assert await inline == 40
    alone[0] = False  # others in flight: the request goes to the thread, as before
    assert await batcher.submit(4) == 40
    await batcher.stop()
    assert handler.batches == [[4], [4]]
    assert handler.threads == {threading.current_thread().name, "recsys-t"}


async def test_a_lone_request_waits_its_turn_while_the_thread_is_busy() -> None:
    gate = threading.Event()
    handler = Recorder()
    batcher = ThreadBatcher("t", handler, max_batch=64, lone=lambda: True)
    batcher.start()
    await _thread_idle(batcher)
    holding = batcher.call(gate.wait, 5)  # the thread busy (a version's warm-up, say)
    await asyncio.sleep(0.05)
    queued = batcher.submit(2)
    assert not queued.done()
    gate.set()
    assert await holding is True
    assert await queued == 20
    await batcher.stop()
    assert handler.threads == {"recsys-t"}


async def test_a_lone_requests_error_reaches_it_and_the_batcher_goes_on() -> None:
    def handler(items: list[int]) -> list[int]:
        if 0 in items:
            raise ValueError("bad item")
        return items

    batcher = ThreadBatcher("t", handler, max_batch=64, lone=lambda: True)
    batcher.start()
    await _thread_idle(batcher)
    with pytest.raises(ValueError, match="bad item"):
        await batcher.submit(0)
    assert await batcher.submit(7) == 7
    await batcher.stop()
