"""The database guard's breaker on its own (the real database cases are in
tests/e2e/test_stack.py, through the deployed stack)."""

import asyncio
import logging

import pytest

from app.db.guard import DatabaseGuard, DatabaseUnavailable


class Database:
    """A stand-in with the one property the guard cares about: answers or hangs."""

    def __init__(self) -> None:
        self.up, self.reads = True, 0

    async def read(self) -> str:
        self.reads += 1
        if not self.up:
            await asyncio.sleep(3600)  # hung, like a paused server
        return "row"


def guard_for(db: Database) -> DatabaseGuard:
    return DatabaseGuard(
        db.read, (OSError,), deadline=0.05, threshold=3, probe_interval=0.02, log_interval=60
    )


async def test_reads_pass_through_while_the_database_answers() -> None:
    guard = guard_for(Database())
    assert await guard.run(Database().read) == "row" and not guard.is_open


async def test_a_hung_read_misses_its_deadline_and_opens_the_breaker(caplog) -> None:
    db = Database()
    db.up = False
    guard = guard_for(db)
    with caplog.at_level(logging.WARNING, "app.db.guard"):
        with pytest.raises(DatabaseUnavailable, match="within 50 ms"):
            await guard.run(db.read)
        assert guard.is_open
        reads = db.reads
        for _ in range(100):  # open: no waiting on the database at all
            with pytest.raises(DatabaseUnavailable, match="circuit open"):
                await guard.run(db.read, deadline=10)
    assert db.reads - reads <= 10  # only the background probe touched it
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited: one line, not one per failure
    await guard.stop()


async def test_the_probe_closes_the_breaker_once_the_database_is_back() -> None:
    db = Database()
    db.up = False
    guard = guard_for(db)
    for _ in range(3):
        with pytest.raises(DatabaseUnavailable):
            await guard.run(db.read)
    assert guard.is_open and not await guard.check()
    db.up = True
    for _ in range(100):
        if not guard.is_open:
            break
        await asyncio.sleep(0.01)
    assert not guard.is_open
    assert await guard.run(db.read) == "row" and await guard.check()


async def test_driver_errors_count_like_missed_deadlines() -> None:
    async def refused() -> str:
        raise OSError("connection refused")

    guard = guard_for(Database())
    for _ in range(3):
        with pytest.raises(OSError):
            await guard.run(refused)
    assert guard.is_open
    await guard.stop()


async def test_errors_count_once_per_request_and_a_missed_deadline_opens_at_once() -> None:
    async def refused() -> str:
        raise OSError("connection refused")

    db = Database()
    guard = guard_for(db)
    with pytest.raises(OSError):
        await guard.run(refused, requests=2)
    assert not guard.is_open  # two requests failed: under the threshold of three
    assert await guard.run(db.read) == "row"  # a success resets the count
    with pytest.raises(OSError):
        await guard.run(refused, requests=12)
    assert guard.is_open  # one failed batch of twelve is enough
    await guard.stop()

    guard = guard_for(db)
    db.up = False
    with pytest.raises(DatabaseUnavailable, match="within 50 ms"):
        await guard.run(db.read)  # one request, one missed deadline
    assert guard.is_open
    await guard.stop()
