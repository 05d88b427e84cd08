"""`recsys bench serve` end to end: a real uvicorn, real wrk, every figure in the JSON."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]
ENDPOINTS = {
    "reference",
    "recommendations",
    "recommendations?returnMetadata",
    "feature",
    "events (POST)",
}


def test_bench_serve_reports_every_endpoint_beside_the_reference(
    loaded_database: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (apt-get install -y wrk)")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "training", "bench", "serve", "--duration", "1"]
    command += ["--warmup", "0", "--connections", "1,4", "--json", str(out)]
    env = {"RECSYS_DATABASE_URL": loaded_database, "RECSYS_ARTIFACTS_DIR": str(artifacts_dir)}
    done = subprocess.run(command, env=env | _inherited(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x ref" in done.stdout and "first /recommendations after start" in done.stdout
    (entry,) = json.loads(out.read_text())["databases"]
    assert entry["backend"] in loaded_database and entry["first_request_ms"] > 0
    assert entry["first_request_next_p50_ms"] > 0 and entry["first_request_vs_next_p50"] > 0
    # The cold path beside a warm server's request after a pause, and the bare route's.
    assert "a request after a pause" in done.stdout
    assert entry["after_pause_ms"] > 0
    assert entry["first_request_vs_after_pause"] == pytest.approx(
        entry["first_request_ms"] / entry["after_pause_ms"], abs=0.01
    )
    assert entry["reference_after_pause_vs_next_p50"] > 0
    runs = {(run["endpoint"], run["connections"]): run for run in entry["runs"]}
    assert set(runs) == {(name, c) for name in ENDPOINTS for c in (1, 4)}
    for (_name, connections), run in runs.items():
        assert run["requests"] > 0 and run["errors"] == 0, run
        assert run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] <= run["max_ms"]
        reference = runs[("reference", connections)]["requests_per_second"]
        assert run["vs_reference"] == pytest.approx(
            run["requests_per_second"] / reference, abs=1e-3
        )
    assert _bench_users_left(loaded_database) == 0  # what it posted is gone again


def _bench_users_left(url: str) -> int:
    import asyncio

    from sqlalchemy import func, select

    from app.db.engine import create_engine
    from app.db.tables import interactions
    from app.settings import DatabaseSettings
    from training.bench.events import BENCH_USER

    async def go() -> int:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                mine = interactions.c.user_id.like(f"{BENCH_USER}%")
                query = select(func.count()).select_from(interactions).where(mine)
                return int((await conn.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _inherited() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in {"RECSYS_DATABASE_URL"}}
