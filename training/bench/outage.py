"""A database outage under load, through the real stack: concurrent clients ask for
recommendations while PostgreSQL is paused (hung) or stopped, then recovers.

Every answer is recorded (status, fallback or personalised, when it started and ended),
so the stack test can assert what must hold (no 5xx, nothing dropped, fallbacks during,
personalised again soon). Its latencies include this Python client's own queueing: the
latency figures come from `recsys bench outage` (training/bench/faults.py), driven by wrk.
"""

import asyncio
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.bench.asking import NO_ANSWER, Answer, asking


@dataclass(frozen=True)
class Phases:
    clients: int = 24
    steady: float = 4.0  # seconds of load before the fault
    outage: float = 10.0  # seconds the database is out
    after: float = 10.0  # seconds of load after recovery


@dataclass(frozen=True)
class Run:
    answers: list[Answer]
    down: float  # when the fault was applied
    back: float  # when the database was given back

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers asked and answered within [start, end)."""
        return [a for a in self.answers if start <= a.started and a.ended < end]


async def outage(
    base: str,
    users: list[str],
    fault: Callable[[], None],
    recover: Callable[[], None],
    phases: Phases | None = None,
) -> Run:
    """Load `base` with `phases.clients` clients; apply `fault`, then `recover`."""
    phases = phases or Phases()
    fallback = operator.itemgetter("fallback")
    async with asking(base, users, phases.clients, fallback) as (_, answers):
        await asyncio.sleep(phases.steady)
        down = time.monotonic()
        await asyncio.to_thread(fault)
        await asyncio.sleep(phases.outage)
        back = time.monotonic()  # before: backends resume while `recover` still runs
        await asyncio.to_thread(recover)
        await asyncio.sleep(phases.after)
    return Run(answers, down, back)


def p99_ms(answers: list[Answer]) -> float:
    return float(np.percentile([a.seconds for a in answers], 99) * 1000) if answers else 0.0


def summary(run: Run) -> dict[str, float]:
    """The figures: steady p99, outage p99 after its first second, failures, and how
    long after recovery the first personalised answer started."""
    steady = [a for a in run.answers if a.ended < run.down]
    during = run.between(run.down + 1.0, run.back)
    after = [a for a in run.answers if a.started >= run.back]
    personalised = [a.started for a in after if a.value is False]
    return {
        "requests": len(run.answers),
        "server_errors": sum(a.status >= 500 for a in run.answers),
        "dropped": sum(a.status == NO_ANSWER for a in run.answers),
        "steady_p99_ms": p99_ms(steady),
        "outage_p99_ms": p99_ms(during),
        "outage_fallback_share": sum(a.value is True for a in during) / max(len(during), 1),
        "personalised_after_s": (min(personalised) - run.back) if personalised else -1.0,
    }
