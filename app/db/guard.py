"""The database guard: every read has a deadline, and a circuit breaker stops waiting on a
database that keeps failing.

- closed: reads run, each under its deadline. A missed deadline opens it at once (a read
  that normally takes milliseconds did not answer in 0.5 s: every request queued behind
  it would wait as long); driver errors open it after `threshold` failed requests in a
  row (a batched read counts once per request in it).
- open: reads fail at once (`DatabaseUnavailable`: the caller answers its fallback) while
  a background probe (`SELECT 1` on a fresh connection, under the same deadline) runs
  every `probe_interval`; the first success closes it, without a restart.

A read that outlives its deadline is abandoned, not awaited: on a paused server even its
connection's cleanup hangs, and the request must not hang with it (the abandoned read
finishes in the background, bounded by the driver's own timeouts). Failures are logged
at most once per `log_interval`, with a count, not once per request.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database did not answer in time, or the breaker is open."""


class DeadlineMissed(DatabaseUnavailable):
    """A read did not answer within its deadline."""


class DatabaseGuard:
    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        errors: tuple[type[BaseException], ...],
        *,
        deadline: float,
        threshold: int = 3,
        probe_interval: float = 0.5,
        log_interval: float = 10.0,
    ):
        self.probe = probe
        self.errors: tuple[type[BaseException], ...] = (DatabaseUnavailable, *errors)
        self.deadline, self.threshold = deadline, threshold
        self.probe_interval, self.log_interval = probe_interval, log_interval
        self.failures = 0  # in a row
        self.opened_at: float | None = None
        self._prober: asyncio.Task | None = None
        self._unlogged, self._logged_at = 0, float("-inf")
        metrics.BREAKER_OPEN.set(0)

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    async def run(
        self, read: Callable[[], Awaitable[T]], deadline: float | None = None, requests: int = 1
    ) -> T:
        """`read()` under the deadline; DatabaseUnavailable (or the driver's error) if not.
        `requests`: how many requests wait on this read (a micro-batch's size)."""
        if self.is_open:
            self._failed("circuit open: the database failed repeatedly; probing it")
            raise DatabaseUnavailable("the database is unavailable (circuit open)")
        started = time.perf_counter()
        try:
            result = await _within(read, deadline or self.deadline)
        except self.errors as exc:
            metrics.DB_ERRORS.inc()
            self._failed(str(exc) or type(exc).__name__)
            self._trip(self.threshold if isinstance(exc, DeadlineMissed) else requests)
            raise
        metrics.DB_LATENCY.observe(time.perf_counter() - started)
        self.failures = 0
        return result

    async def check(self) -> bool:
        """Reachable now? (for readiness: never waits longer than the read deadline)."""
        if self.is_open:
            return False
        try:
            await _within(self.probe, self.deadline)
        except self.errors:
            return False
        return True

    def _failed(self, reason: str) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self.log_interval:
            log.warning(
                "database unavailable: %s (%d failed or skipped reads since the last report)",
                reason, self._unlogged,
            )  # fmt: skip
            self._unlogged, self._logged_at = 0, now

    def _trip(self, failures: int) -> None:
        self.failures += failures
        if self.failures >= self.threshold and not self.is_open:
            self.opened_at = time.monotonic()
            metrics.BREAKER_OPEN.set(1)
            log.error("database circuit opened (%d failures in a row)", self.failures)
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await _within(self.probe, self.deadline)
                break
            except Exception as exc:  # any failure means: still out (the probe must live on)
                log.debug("database probe failed: %r", exc)
        down = time.monotonic() - (self.opened_at or time.monotonic())
        self.opened_at, self.failures = None, 0
        metrics.BREAKER_OPEN.set(0)
        log.warning("database available again after %.1f s; circuit closed", down)

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober


async def _within(read: Callable[[], Awaitable[T]], deadline: float) -> T:
    task = asyncio.ensure_future(read())
    try:
        return await asyncio.wait_for(asyncio.shield(task), deadline)
    except TimeoutError:
        _abandon(task)
        raise DeadlineMissed(f"no answer within {deadline * 1000:.0f} ms") from None
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is None or current.cancelling():  # the caller was cancelled: pass it on
            _abandon(task)
            raise
        # The read itself ended cancelled (a driver cancelling its own work): a failure.
        raise DatabaseUnavailable("the read was cancelled") from None


def _abandon(task: asyncio.Future) -> None:
    """Leave the read to end by itself (the driver's own connect and statement timeouts
    bound it). Not cancelled: cancelling SQLAlchemy's async driver mid-operation on a
    hung server was seen to leave the probe stalled, so the breaker never closed."""
    # Retrieve its outcome whenever it ends, so nothing is reported as never retrieved.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
