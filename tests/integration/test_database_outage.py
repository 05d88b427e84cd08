"""A database that hangs (paused with SIGSTOP) or stops, under 24 concurrent clients:
no request fails, answers fall back to popular items while it is out, and personalised
answers return after it recovers, without a restart. Runs on a throwaway PostgreSQL
cluster (its own folder and port), never the machine's shared server.

(How fast the fallbacks are is measured by a benchmark, not asserted here.)"""

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.settings import ArtifactSettings, DatabaseSettings, Settings
from tests.conftest import app_client, load_into, require
from training.bench.pgcluster import Cluster, pg_bin, throwaway_cluster

pytestmark = [pytest.mark.movielens, pytest.mark.model]
CLIENTS = 24


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    fallback: bool


@pytest.fixture(scope="module")
def cluster(movielens) -> Cluster:
    from training.migrate import upgrade

    require(pg_bin() is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    with throwaway_cluster() as cluster:
        upgrade(cluster.url)
        load_into(cluster.url, movielens)
        yield cluster


@pytest.fixture
async def client(cluster: Cluster, artifacts_dir: Path):
    settings = Settings(
        database=DatabaseSettings(url=cluster.url),
        artifacts=ArtifactSettings(dir=artifacts_dir),
    )
    async with app_client(settings) as client:
        yield client


async def _ask(client, answers: list[Answer], stop: asyncio.Event, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    while not stop.is_set():
        started = time.monotonic()
        response = await client.get(f"/recommendations/{rng.randint(1, 943)}")
        fallback = response.status_code == 200 and response.json()["fallback"]
        answers.append(Answer(started, time.monotonic(), response.status_code, fallback))


async def _outage(client, fault, recover) -> tuple[list[Answer], float, float]:  # type: ignore[no-untyped-def]
    answers: list[Answer] = []
    stop = asyncio.Event()
    load = [asyncio.create_task(_ask(client, answers, stop, n)) for n in range(CLIENTS)]
    await asyncio.sleep(1.5)
    down = time.monotonic()
    await asyncio.to_thread(fault)
    await asyncio.sleep(1.5)
    feature = await client.get("/feature/1")
    assert feature.status_code == 503 and feature.headers["retry-after"]
    assert (await client.get("/healthz")).status_code == 200  # alive throughout
    await asyncio.sleep(2.5)
    await asyncio.to_thread(recover)
    back = time.monotonic()
    await asyncio.sleep(5)
    stop.set()
    await asyncio.gather(*load)
    return answers, down, back


def _check(answers: list[Answer], down: float, back: float) -> None:
    assert answers and all(a.status == 200 for a in answers), {a.status for a in answers}
    before = [a for a in answers if a.ended < down]
    assert before and not any(a.fallback for a in before)
    during = [a for a in answers if down + 1 < a.started < back]
    assert during and all(a.fallback for a in during)
    after = [a for a in answers if a.started > back]
    assert any(not a.fallback for a in after), (
        f"never personalised again after recovery: {len(after)} answers, "
        f"{sum(a.fallback for a in after)} fallbacks"
    )


async def test_a_hung_database_gives_fallbacks_then_recovers(client, cluster: Cluster) -> None:
    answers, down, back = await _outage(client, cluster.pause, cluster.resume)
    _check(answers, down, back)
    metrics = (await client.get("/metrics")).text
    assert 'recsys_fallbacks_total{reason="database_unavailable"}' in metrics
    assert (await client.get("/readyz")).json()["breaker"] == "closed"


async def test_a_stopped_database_gives_fallbacks_then_recovers(client, cluster: Cluster) -> None:
    answers, down, back = await _outage(client, cluster.stop, cluster.start)
    _check(answers, down, back)
    assert (await client.get("/readyz")).status_code == 200
