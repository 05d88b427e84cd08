"""One write at a time per process where the database takes one writer (SQLite).

SQLite lets one connection write at a time. Pooled connections that race for that lock
wait in its busy handler, which sleeps in growing steps (up to 100 ms), or fail at once
when a read transaction cannot upgrade: at 32 concurrent posts, writes missed their
deadline, which the database guard rightly reads as an outage, and the circuit opened for
every read too. Queued here instead, each write finds the lock free and takes a few
milliseconds. Only the database's own time counts against the guard's deadline; a write
that waits its turn longer than the same deadline is answered 503 (retry) without
tripping the circuit, since the database is busy, not down. PostgreSQL takes concurrent
writers: no gate.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from app.db.guard import DatabaseUnavailable


class WritesQueued(DatabaseUnavailable):
    """Waited past the deadline behind this process's other writes."""


class WriteGate:
    def __init__(self, *, single_writer: bool, wait_seconds: float):
        self._lock = asyncio.Lock() if single_writer else None
        self.wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._lock is None:
            yield
            return
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._lock.acquire()
        except TimeoutError:
            raise WritesQueued(
                f"other writes held the database for over {self.wait_seconds:g} s"
            ) from None
        try:
            yield
        finally:
            self._lock.release()
