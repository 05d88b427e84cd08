"""What the lifespan builds once per process: engine, model registry, the two batchers.

Requests reach the model through two micro-batchers in a row: `profiles` turns the
user ids of concurrent requests into one database statement (two such reads at once on
PostgreSQL), `models` turns their profiles into one `recommend_batch` call on the
model's own thread (app.threadbatch). The two run side by side, so profiles are read
while the previous batch is being scored. Similar items have a thread of their own, so
they never queue behind the personalised lists.
"""

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.batching import MicroBatcher
from app.db.engine import create_engine
from app.db.guard import DatabaseGuard
from app.db.profiles import ProfileReader, profile_reader
from app.db.queries import UserProfile
from app.db.writegate import WriteGate
from app.errors import DATABASE_ERRORS
from app.registry import ModelRegistry
from app.serving import (
    Ranked,
    RecommendRequest,
    SimilarRequest,
    recommend_batch,
    similar_batch,
    warm_up,
)
from app.settings import Settings
from app.threadbatch import ThreadBatcher
from app.version import ModelVersion

Scoring = tuple[ModelVersion, RecommendRequest]
Similar = tuple[ModelVersion, SimilarRequest]


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    registry: ModelRegistry
    reader: ProfileReader
    profiles: MicroBatcher[str, UserProfile | None]
    models: ThreadBatcher[Scoring, Ranked]
    similar: ThreadBatcher[Similar, Ranked]
    guard: DatabaseGuard
    probe_engine: AsyncEngine
    writes: WriteGate

    async def warm(self) -> None:
        """Run the path once before traffic: the model on the thread that will serve it,
        and one profile read through the batcher and the reader (the lifespan's pool
        warm-up prepares the statement on each connection)."""
        await self.models.call(warm_up, self.registry.assignment.live)
        # The database may be down at start: requests degrade until it is back.
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.profiles.submit("")

    async def stop(self) -> None:
        await self.guard.stop()
        await self.registry.stop()
        await self.profiles.stop()
        await self.models.stop()
        await self.similar.stop()
        await self.reader.close()
        await self.engine.dispose()
        await self.probe_engine.dispose()


def build_runtime(
    settings: Settings,
    engine: AsyncEngine,
    registry: ModelRegistry,
    lone: Callable[[], bool] | None = None,
) -> Runtime:
    """`lone`: true while a request is the only one in flight (its model step then runs on
    the event loop when the model thread is idle; app.threadbatch)."""
    serving = settings.serving
    limit = serving.max_seen_items

    reader = profile_reader(settings.database, engine)
    guard, probe_engine = database_guard(settings)

    async def read_profiles(user_ids: list[str]) -> list[UserProfile | None]:
        found = await guard.run(lambda: reader.read(user_ids, limit), requests=len(user_ids))
        return [found.get(user_id) for user_id in user_ids]

    size, window = serving.batch_max_size, serving.batch_window_ms / 1000
    runtime = Runtime(
        settings=settings,
        engine=engine,
        registry=registry,
        reader=reader,
        profiles=MicroBatcher(
            "profiles",
            read_profiles,
            max_batch=size,
            window=window,
            in_flight=serving.profile_reads_in_flight or reader.in_flight,
        ),
        models=ThreadBatcher(
            "models",
            partial(score_batch, run=recommend_batch),
            max_batch=size,
            window=window,
            lone=lone if _setting_or(serving.inline_lone_requests, reader.inline_lone) else None,
        ),
        similar=ThreadBatcher(
            "similar", partial(score_batch, run=similar_batch), max_batch=size, window=window
        ),
        guard=guard,
        probe_engine=probe_engine,
        writes=WriteGate(
            single_writer=engine.dialect.name == "sqlite",
            wait_seconds=settings.database.write_deadline_seconds,
        ),
    )
    runtime.profiles.start()
    runtime.models.start()
    runtime.similar.start()
    return runtime


def _setting_or(setting: bool | None, default: bool) -> bool:
    return default if setting is None else setting


def database_guard(settings: Settings) -> tuple[DatabaseGuard, AsyncEngine]:
    """The guard, and the engine its probe uses: fresh connections, outside the pool, so
    a pool full of connections hung on a paused server cannot hide the recovery."""
    db = settings.database
    probe_engine = create_engine(db, pooled=False)

    async def probe() -> None:
        async with probe_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    guard = DatabaseGuard(
        probe,
        DATABASE_ERRORS,
        deadline=db.read_deadline_seconds,
        threshold=db.breaker_threshold,
        probe_interval=db.probe_seconds,
        log_interval=db.outage_log_seconds,
    )
    return guard, probe_engine


def score_batch(batch: Sequence[tuple[ModelVersion, Any]], run: Any) -> list[Ranked]:
    """One `run` (recommend_batch, similar_batch) call per version in the batch (two only
    during a swap)."""
    groups: dict[int, list[int]] = {}
    for position, (version, _) in enumerate(batch):
        groups.setdefault(id(version), []).append(position)
    results: list[Ranked | None] = [None] * len(batch)
    for positions in groups.values():
        version = batch[positions[0]][0]
        ranked = run(version, [batch[p][1] for p in positions])
        for p, one in zip(positions, ranked, strict=True):
            results[p] = one
    return results  # type: ignore[return-value]
