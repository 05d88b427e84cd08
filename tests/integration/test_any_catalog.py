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


def recsys(*args: str, url: str, artifacts: Path, **extra: str) -> str:
    env = {**os.environ, "RECSYS_DATABASE_URL": url, "RECSYS_ARTIFACTS_DIR": str(artifacts)}
    env |= extra
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
    mlflow = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = {
        "RECSYS_TRAINING_MLFLOW_TRACKING_URI": mlflow,
        "RECSYS_TRAINING_MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "mlruns"),
    }
    trained = recsys("train", "--epochs", "2", "--ranker-epochs", "1", **run, **tracked)
    assert "published" in trained and "peak memory" in trained
    _watchable(artifacts, mlflow)
    report = tmp_path / "report.json"
    recsys("evaluate", "--epochs", "1", "--ranker-epochs", "1", "--json", str(report), **run)
    methods = json.loads(report.read_text())["methods"]
    assert {"two-stage (served)", "popularity", "item transitions (sequential)"} <= set(methods)
    settings = Settings(
        database=DatabaseSettings(url=url), artifacts=ArtifactSettings(dir=artifacts)
    )
    asyncio.run(_serves(settings, config))


def _watchable(artifacts: Path, mlflow_uri: str) -> None:
    """The version folder holds TensorBoard logs of both stages and the curves PNG; the
    manifest and the MLflow run hold validation metrics per epoch."""
    (version,) = [p for p in artifacts.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for stage in ("retrieval", "ranker"):
        assert list((version / "tensorboard" / stage).rglob("events.out.tfevents.*")), stage
    assert (version / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    curves = json.loads((version / "manifest.json").read_text())["evaluation"]["epoch_curves"]
    assert len(curves["retrieval"]["val_hr@10"]) == 2 and len(curves["ranker"]["loss"]) == 1
    import mlflow

    runs = mlflow.MlflowClient(tracking_uri=mlflow_uri).search_runs(["1"])
    assert [r.data.tags["version"] for r in runs] == [version.name]
    history = mlflow.MlflowClient(tracking_uri=mlflow_uri).get_metric_history(
        runs[0].info.run_id, "retrieval.val_hr_at_10"
    )
    assert [m.step for m in history] == [0, 1] and "served.hr_at_10" in runs[0].data.metrics
    assert list((artifacts.parent / "mlruns").rglob("manifest.json"))  # the version, logged


async def _serves(settings: Settings, config) -> None:  # type: ignore[no-untyped-def]
    """A known user gets a personalised list with the catalog's metadata fields and
    `/feature` with the catalog's user fields; a stranger gets the marked fallback."""
    async with app_client(settings) as client:
        user = await _a_user(settings)
        body = (await client.get(f"/recommendations/{user}?k=5&returnMetadata=true")).json()
        assert body["fallback"] is False and len(body["items"]) == 5, body
        # The catalog's metadata fields (a missing value is left out, as null fields are).
        fields = {"id", "score", *config.items.metadata}
        assert all(set(item) <= fields for item in body["items"]), body
        assert set().union(*body["items"]) == fields, body
        feature = (await client.get(f"/feature/{user}")).json()["feature"][0]
        declared = [f.name for f in config.user_fields]
        assert list(feature) == ["histories", "user_id", *declared] and feature["histories"]
        curves = await client.get("/model/curves.png")
        assert curves.status_code == 200 and curves.headers["content-type"] == "image/png"
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
