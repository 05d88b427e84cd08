"""Micro-batching: concurrent requests share one handler call.

Submitting appends to a queue and returns a future; no task is created per request. One
loop per batcher takes whatever has queued (up to `max_batch`) as soon as the previous
batch is done: under load batches grow by themselves, alone a request waits for nothing.
A `window` above zero holds a batch open that long for company, trading latency at low
load for fewer, larger calls. `in_flight` above one lets that many handler calls run at
once (each a task of its own): a request that arrives while a batch is being read starts
the next batch at once instead of waiting for the first to come back.
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
    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        max_batch: int,
        window: float = 0.0,
        in_flight: int = 1,
    ):
        self.name, self.handler = name, handler
        self.max_batch, self.window, self.in_flight = max_batch, window, in_flight
        self._queue: deque[tuple[T, asyncio.Future, float]] = deque()
        self._ready = asyncio.Event()  # a request queued, or a handler call finished
        self._loop_task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()  # handler calls under way

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Cancel the batches under way (their requests are cancelled) and the queued."""
        for task in [*filter(None, [self._loop_task]), *self._running]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            _, future, _ = self._queue.popleft()
            future.cancel()

    def submit(self, item: T) -> "asyncio.Future[R]":
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future, time.perf_counter()))
        if len(self._running) < self.in_flight:  # else the next call to finish wakes it
            self._ready.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue or len(self._running) >= self.in_flight:
                self._ready.clear()
                await self._ready.wait()
                continue
            if self.window and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.window)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
            batch = [entry for entry in batch if not entry[1].done()]  # caller gone
            if batch:
                task = asyncio.create_task(self._handle(batch))
                self._running.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._ready.set()

    async def _handle(self, batch: list[tuple[T, asyncio.Future, float]]) -> None:
        started = time.perf_counter()
        metrics.observe_batch(self.name, len(batch), [started - queued for *_, queued in batch])
        futures = [future for _, future, _ in batch]
        try:
            results = await self.handler([item for item, _, _ in batch])
        except asyncio.CancelledError:  # stopped: the batch's requests end with it
            for future in futures:
                future.cancel()
            raise
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
