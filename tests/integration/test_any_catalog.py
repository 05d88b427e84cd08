"""Any catalog through the same commands, no code change: a synthetic shop in the generic
format (its own feature names and kinds, with and without a user file) and MovieLens'
latest-small layout (files written here with the real one's quirks) are loaded, trained,
evaluated and served by `recsys` as a user runs it, and answered by the real app."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.catalog import read_catalog_config
from app.settings import ArtifactSettings, DatabaseSettings, Settings
from tests.conftest import app_client, backend_available
from training.catalog_files import find_catalog

pytestmark = pytest.mark.model


def recsys(*args: str, url: str, artifacts: Path) -> str:
    env = {**os.environ, "RECSYS_DATABASE_URL": url, "RECSYS_ARTIFACTS_DIR": str(artifacts)}
    result = subprocess.run(
        [sys.executable, "-m", "training", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, f"recsys {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def latest_small(folder: Path, users: int = 40, movies: int = 120) -> Path:
    """movies.csv and ratings.csv as GroupLens writes latest-small: quoted titles with
    commas and quotes, "(no genres listed)", half-star ratings, and ratings.csv sorted by
    movieId within each user (so file order says nothing about time)."""
    rng = np.random.default_rng(5)
    genres = ["Action", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi"]
    lines = ["movieId,title,genres"]
    for m in range(1, movies + 1):
        title = f'"Film {m}, The ""Cut"" ({1950 + m % 60})"' if m % 3 else f"Film {m} ({1990})"
        kinds = "(no genres listed)" if m % 17 == 0 else "|".join(genres[: 1 + m % 4])
        lines.append(f"{m},{title},{kinds}")
    (folder / "movies.csv").write_text("\n".join(lines) + "\n")
    rows = ["userId,movieId,rating,timestamp"]
    for u in range(1, users + 1):
        taste = u % 4  # each user prefers a quarter of the catalogue
        pool = [m for m in range(1, movies + 1) if m % 4 == taste]
        chosen = rng.choice(pool, size=12, replace=False)
        times = 964_980_000 + np.sort(rng.integers(0, 50_000, size=12))
        times[-2] = times[-1]  # a same-second pair at the end, as real users have
        by_movie = sorted(zip(chosen.tolist(), times.tolist(), strict=True))
        for movie, at in by_movie:
            rows.append(f"{u},{movie},{rng.integers(1, 11) / 2:.1f},{at}")
    (folder / "ratings.csv").write_text("\n".join(rows) + "\n")
    return folder


def synthetic(folder: Path, *, users: bool, url: str, artifacts: Path) -> Path:
    args = ["--users", "60", "--items", "300", "--interactions", "3000", "--out", str(folder)]
    recsys("data", "synth", *args, *([] if users else ["--no-users"]), url=url, artifacts=artifacts)
    return folder / "catalog.toml"


CASES = {
    # name: (backend, how to make the files)
    "shop": ("postgres", "synth"),
    "shop-without-users": ("sqlite", "synth-no-users"),
    "movielens-latest-small": ("sqlite", "latest-small"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_catalog_loads_trains_evaluates_and_serves(case: str, tmp_path: Path, databases) -> None:
    backend, files = CASES[case]
    backend_available(backend)
    url, artifacts, data = databases.migrated(backend), tmp_path / "artifacts", tmp_path / "data"
    data.mkdir()
    if files == "latest-small":
        config_path = find_catalog("movielens-latest-small")
        latest_small(data)
    else:
        config_path = synthetic(data, users=files == "synth", url=url, artifacts=artifacts)
    config = read_catalog_config(config_path)
    run = {"url": url, "artifacts": artifacts}
    recsys("data", "load", "--catalog", str(config_path), "--data-dir", str(data), **run)
    trained = recsys("train", "--epochs", "1", "--ranker-epochs", "1", **run)
    assert "published" in trained and "peak memory" in trained
    report = tmp_path / "report.json"
    recsys("evaluate", "--epochs", "1", "--ranker-epochs", "1", "--json", str(report), **run)
    methods = json.loads(report.read_text())["methods"]
    assert {"two-stage (served)", "popularity", "item transitions (sequential)"} <= set(methods)
    settings = Settings(
        database=DatabaseSettings(url=url), artifacts=ArtifactSettings(dir=artifacts)
    )
    asyncio.run(_serves(settings, config))


async def _serves(settings: Settings, config) -> None:  # type: ignore[no-untyped-def]
    """A known user gets a personalised list with the catalog's metadata fields and
    `/feature` with the catalog's user fields; a stranger gets the marked fallback."""
    async with app_client(settings) as client:
        user = await _a_user(settings)
        body = (await client.get(f"/recommendations/{user}?k=5&returnMetadata=true")).json()
        assert body["fallback"] is False and len(body["items"]) == 5, body
        for item in body["items"]:
            assert set(config.items.metadata) <= set(item), item
        feature = (await client.get(f"/feature/{user}")).json()["feature"][0]
        declared = [f.name for f in config.user_fields]
        assert list(feature) == ["histories", "user_id", *declared] and feature["histories"]
        stranger = (await client.get("/recommendations/nobody-at-all?k=3")).json()
        assert stranger["fallback"] is True and stranger["fallback_reason"] == "unknown_user"


async def _a_user(settings: Settings) -> str:
    from sqlalchemy import select

    from app.db.engine import create_engine
    from app.db.tables import interactions

    engine = create_engine(settings.database)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(interactions.c.user_id).limit(1))).scalar_one()
    finally:
        await engine.dispose()
