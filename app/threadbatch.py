"""Micro-batching onto one dedicated thread, for synchronous work (the model).

The event loop only queues requests and receives answers, one wake-up per batch. The
thread takes whatever has queued (up to `max_batch`) the moment its previous batch is
done, so a loop busy with HTTP work never leaves the model idle waiting to be handed its
next batch (the asyncio batcher's handoff did: at 32 connections the model thread sat
idle about half the time). A thread that stays the same also stays warm (TensorFlow's
per-thread state, caches): `call` runs warm-up work on it.

A lone request (`lone()` true: nothing else in flight) that finds the thread idle runs
its batch of one on the caller's thread instead: it saves the hand-off to the model thread
and the answer's way back to the loop (two thread wake-ups), and nobody waits for the loop
meanwhile. The thread may be just taking a `call` as that happens: the model's TensorFlow
session and ScaNN searcher may be called from two threads at once.
"""

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from app import metrics
from app.batching import settle

T = TypeVar("T")
R = TypeVar("R")
_STOP, _CALL = object(), object()
Entry = tuple[Any, asyncio.Future, Any]  # (item or _CALL, future, queued at or (fn, args))


class ThreadBatcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        handler: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int,
        window: float = 0.0,
        lone: Callable[[], bool] | None = None,
    ):
        self.name, self.handler = name, handler
        self.max_batch, self.window, self.lone = max_batch, window, lone
        self._waiting = False  # the thread is blocked on an empty queue
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"recsys-{name}", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    async def stop(self) -> None:
        """Finish the batch in hand, then cancel whatever is still queued."""
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        while not self._queue.empty():
            entry = self._queue.get_nowait()
            if entry is not _STOP:
                entry[1].cancel()

    def submit(self, item: T) -> "asyncio.Future[R]":
        future = asyncio.get_running_loop().create_future()
        if self._waiting and self._queue.empty() and self.lone is not None and self.lone():
            metrics.observe_batch(self.name, 1, [0.0])
            self._settle_inline(item, future)
        else:
            self._queue.put((item, future, time.perf_counter()))
        return future

    def _settle_inline(self, item: T, future: asyncio.Future) -> None:
        try:
            future.set_result(self.handler([item])[0])
        except Exception as exc:  # as a batch's error: the request reports it
            future.set_exception(exc)

    def call(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        """`fn(*args)` on the batcher's thread, in turn with the batches."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put((_CALL, future, (fn, args)))
        return future

    def _run(self) -> None:
        while True:
            self._waiting = True
            batch = [self._queue.get()]
            self._waiting = False
            if self.window and batch[0] is not _STOP:
                time.sleep(self.window)
            while len(batch) < self.max_batch and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _STOP:
                self._handle(batch[:-1])
                return
            self._handle(batch)

    def _handle(self, batch: list[Entry]) -> None:
        for _, future, (fn, args) in [entry for entry in batch if entry[0] is _CALL]:
            self._answer([future], partial(_as_list, fn, args))
        # A request whose caller has gone (its future cancelled) is not scored.
        batch = [entry for entry in batch if entry[0] is not _CALL and not entry[1].done()]
        if batch:
            started = time.perf_counter()
            metrics.observe_batch(self.name, len(batch), [started - at for *_, at in batch])
            items = [item for item, _, _ in batch]
            self._answer([future for _, future, _ in batch], partial(self.handler, items))

    def _answer(self, futures: list[asyncio.Future], work: Callable[[], Sequence[Any]]) -> None:
        try:
            results, error = work(), None
        except Exception as exc:  # handed to every waiting request, which reports it
            results, error = None, exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(settle, futures, results, error)


def _as_list(fn: Callable[..., Any], args: tuple[Any, ...]) -> list[Any]:
    return [fn(*args)]
