"""Clients that keep asking for random users' recommendations, each answer recorded:
the load behind `recsys bench swap` and the stack test's outage (a Python client, so its
figures include its own queueing; wrk measures latency where that matters)."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

NO_ANSWER = 0  # the status recorded when the connection failed without an answer


@dataclass(frozen=True)
class Answer:
    client: int
    started: float
    ended: float
    status: int
    value: Any  # what `read` took from a 200's JSON body (None otherwise)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@asynccontextmanager
async def asking(
    base_url: str, users: list[str], clients: int, read: Callable[[dict], Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, list[Answer]]]:
    """`clients` concurrent clients asking until the block ends; yields a client for the
    block's own requests and the answers so far."""
    answers: list[Answer] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        tasks = [
            asyncio.create_task(_ask(n, http, users, read, answers, stop)) for n in range(clients)
        ]
        try:
            yield http, answers
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def _ask(n, http, users, read, answers, stop) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(n)
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await http.get(f"/recommendations/{rng.choice(users)}")
            status = response.status_code
            value = read(response.json()) if status == 200 else None
        except (httpx.HTTPError, ValueError):
            status, value = NO_ANSWER, None
        answers.append(Answer(n, started, time.monotonic(), status, value))
