"""A database outage under load, through the real stack: concurrent clients ask for
recommendations while PostgreSQL is paused (hung) or stopped, then recovers.

Every answer is recorded (status, fallback or personalised, when it started and ended),
so the stack test can assert what must hold (no 5xx, nothing dropped, fallbacks during,
personalised again soon). Its latencies include this Python client's own queueing: the
latency figures come from `recsys bench outage` (training/bench/faults.py), driven by wrk.
"""

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np

DROPPED = 0  # the status recorded when the connection failed without an answer


@dataclass(frozen=True)
class Phases:
    clients: int = 24
    steady: float = 4.0  # seconds of load before the fault
    outage: float = 10.0  # seconds the database is out
    after: float = 10.0  # seconds of load after recovery


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int
    fallback: bool

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Run:
    answers: list[Answer]
    down: float  # when the fault was applied
    back: float  # when the database was given back

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers asked and answered within [start, end)."""
        return [a for a in self.answers if start <= a.started and a.ended < end]


async def _client(  # type: ignore[no-untyped-def]
    http: httpx.AsyncClient, users: list[str], out: list[Answer], stop, seed: int
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await http.get(f"/recommendations/{rng.choice(users)}")
            status = response.status_code
            fallback = status == 200 and response.json()["fallback"]
        except httpx.TransportError:
            status, fallback = DROPPED, False
        out.append(Answer(started, time.monotonic(), status, fallback))


async def outage(
    base: str,
    users: list[str],
    fault: Callable[[], None],
    recover: Callable[[], None],
    phases: Phases | None = None,
) -> Run:
    """Load `base` with `phases.clients` clients; apply `fault`, then `recover`."""
    phases = phases or Phases()
    answers: list[Answer] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=phases.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        load = [
            asyncio.create_task(_client(http, users, answers, stop, seed))
            for seed in range(phases.clients)
        ]
        await asyncio.sleep(phases.steady)
        down = time.monotonic()
        await asyncio.to_thread(fault)
        await asyncio.sleep(phases.outage)
        back = time.monotonic()  # before: backends resume while `recover` still runs
        await asyncio.to_thread(recover)
        await asyncio.sleep(phases.after)
        stop.set()
        await asyncio.gather(*load)
    return Run(answers, down, back)


def p99_ms(answers: list[Answer]) -> float:
    return float(np.percentile([a.seconds for a in answers], 99) * 1000) if answers else 0.0


def summary(run: Run) -> dict[str, float]:
    """The figures: steady p99, outage p99 after its first second, failures, and how
    long after recovery the first personalised answer started."""
    steady = [a for a in run.answers if a.ended < run.down]
    during = run.between(run.down + 1.0, run.back)
    after = [a for a in run.answers if a.started >= run.back]
    personalised = [a.started for a in after if not a.fallback]
    return {
        "requests": len(run.answers),
        "server_errors": sum(a.status >= 500 for a in run.answers),
        "dropped": sum(a.status == DROPPED for a in run.answers),
        "steady_p99_ms": p99_ms(steady),
        "outage_p99_ms": p99_ms(during),
        "outage_fallback_share": sum(a.fallback for a in during) / max(len(during), 1),
        "personalised_after_s": (min(personalised) - run.back) if personalised else -1.0,
    }
