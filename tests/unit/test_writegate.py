"""WriteGate: one write at a time where the database takes one writer, none held back
where it takes many, and a turn waited for too long is a retryable 503, not an outage."""

import asyncio

import pytest

from app.db.guard import DatabaseUnavailable
from app.db.writegate import WriteGate, WritesQueued


async def overlap(gate: WriteGate, writers: int) -> int:
    """The most writers inside the gate at once."""
    inside = most = 0

    async def write() -> None:
        nonlocal inside, most
        async with gate.turn():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(write() for _ in range(writers)))
    return most


def test_a_single_writer_database_gets_one_write_at_a_time() -> None:
    assert asyncio.run(overlap(WriteGate(single_writer=True, wait_seconds=5), 8)) == 1


def test_a_database_with_many_writers_is_not_held_back() -> None:
    assert asyncio.run(overlap(WriteGate(single_writer=False, wait_seconds=5), 8)) == 8


def test_a_turn_waited_past_the_deadline_is_refused_as_retryable() -> None:
    async def go() -> None:
        gate = WriteGate(single_writer=True, wait_seconds=0.05)
        async with gate.turn():
            with pytest.raises(WritesQueued) as refused:
                async with gate.turn():
                    pass
        assert isinstance(refused.value, DatabaseUnavailable)  # answered 503 + Retry-After
        async with gate.turn():  # the gate is free again once the holder is done
            pass

    asyncio.run(go())


def test_a_failed_write_gives_its_turn_back() -> None:
    async def go() -> None:
        gate = WriteGate(single_writer=True, wait_seconds=0.05)
        with pytest.raises(RuntimeError):
            async with gate.turn():
                raise RuntimeError("the write failed")
        async with gate.turn():
            pass

    asyncio.run(go())
