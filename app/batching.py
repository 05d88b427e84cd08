"""Micro-batching: concurrent requests share one handler call.

Submitting appends to a queue and returns a future; no task is created per request. One
loop per batcher takes whatever has queued (up to `max_batch`) as soon as the previous
batch is done: under load batches grow by themselves, alone a request waits for nothing.
A `window` above zero holds a batch open that long for company, trading latency at low
load for fewer, larger calls.
"""

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from app import metrics

T = TypeVar("T")
R = TypeVar("R")
Handler = Callable[[list[T]], Awaitable[Sequence[R]]]


class MicroBatcher(Generic[T, R]):
    def __init__(self, name: str, handler: Handler, *, max_batch: int, window: float = 0.0):
        self.name, self.handler = name, handler
        self.max_batch, self.window = max_batch, window
        self._queue: deque[tuple[T, asyncio.Future, float]] = deque()
        self._ready = asyncio.Event()
        self._loop_task: asyncio.Task | None = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        while self._queue:
            _, future, _ = self._queue.popleft()
            future.cancel()

    def submit(self, item: T) -> "asyncio.Future[R]":
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future, time.perf_counter()))
        self._ready.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
            if self.window and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.window)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
            batch = [entry for entry in batch if not entry[1].done()]  # caller gone
            if batch:
                await self._handle(batch)

    async def _handle(self, batch: list[tuple[T, asyncio.Future, float]]) -> None:
        started = time.perf_counter()
        metrics.observe_batch(self.name, len(batch), [started - queued for *_, queued in batch])
        futures = [future for _, future, _ in batch]
        try:
            results = await self.handler([item for item, _, _ in batch])
        except Exception as exc:  # handed to every waiting request, which reports it
            settle(futures, None, exc)
            return
        settle(futures, results, None)


def settle(futures: Sequence[asyncio.Future], results: Any, error: Exception | None) -> None:
    """On the event loop: each future still waiting gets its result, or the batch's error."""
    for position, future in enumerate(futures):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(results[position])
