"""`recsys bench serve --items N`: a synthetic catalog of N items, served end to end.

Everything goes to places of its own, never the user's: a dedicated database (on
PostgreSQL, `recsys_bench_<N>` on the configured server; on SQLite, a file next to the
artifacts) and a dedicated artifacts folder. The catalog is `recsys data synth`'s (files
in the generic format and their config), loaded as `recsys data load` loads any catalog,
a model trained briefly (one epoch per stage), exported and published there; a second
run with the same size finds both and starts serving at once.
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.catalog import CatalogConfig
from app.db.engine import create_engine, safe_url
from app.db.tables import items as items_table
from app.manifest import LIVE_POINTER
from app.settings import ArtifactSettings, DatabaseSettings, Settings
from app.store import live_or_none
from training.config import TrainConfig
from training.load import load_catalog
from training.migrate import upgrade
from training.synth import write_synthetic


@dataclass(frozen=True)
class Scale:
    items: int
    users: int
    interactions: int
    folder: Path  # holds the artifacts (and the SQLite database)
    seed: int = 0


def prepare(scale: Scale, base_url: str, console: Console) -> tuple[str, Path]:
    """(database URL, artifacts folder) of a published version over the synthetic
    catalog, building whatever is not there yet."""
    url = asyncio.run(_database(base_url, scale))
    artifacts = scale.folder / f"artifacts-{scale.items}"
    upgrade(url)
    if asyncio.run(_items_in(url)) != scale.items:
        console.print(f"generating and loading {scale.items:,} items into {safe_url(url)}")
        files = scale.folder / f"catalog-{scale.items}"
        config = write_synthetic(
            files,
            users=scale.users,
            items=scale.items,
            interactions=scale.interactions,
            seed=scale.seed,
        )
        asyncio.run(_load(url, config, files))
        _forget(artifacts)
    if live_or_none(artifacts) is None:
        _train(url, artifacts, console)
    return url, artifacts


async def _database(base_url: str, scale: Scale) -> str:
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        scale.folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(scale.folder / f'bench-{scale.items}.db').resolve()}"
    name = f"recsys_bench_{scale.items}"
    engine = create_engine(DatabaseSettings(url=base_url))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = text("SELECT 1 FROM pg_database WHERE datname = :n")
            if (await conn.execute(exists, {"n": name})).first() is None:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


async def _items_in(url: str) -> int:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            count = select(func.count()).select_from(items_table)
            return int((await conn.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def _load(url: str, config: CatalogConfig, files: Path) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await load_catalog(engine, config, files)
    finally:
        await engine.dispose()


def _forget(artifacts: Path) -> None:
    """A new catalog makes the old versions meaningless: unpublish them."""
    (artifacts / LIVE_POINTER).unlink(missing_ok=True)


def _train(url: str, artifacts: Path, console: Console) -> None:
    from training.pipeline import run

    settings = Settings(
        database=DatabaseSettings(url=url), artifacts=ArtifactSettings(dir=artifacts)
    )
    config = TrainConfig(epochs=1, batch_size=4096)
    config.ranker.epochs = 1
    console.print(f"training briefly (one epoch per stage) into {artifacts}")
    run(settings, config, console=console)
