"""Faults degrade gracefully: an unreachable database, a damaged artifact."""

import json
import shutil
from pathlib import Path

import pytest

from app.artifacts import load_live, load_version
from app.settings import ArtifactSettings, DatabaseSettings, Settings
from app.store import ArtifactError, live_name
from tests.conftest import app_client
from training.bench.server import free_port

pytestmark = [pytest.mark.movielens, pytest.mark.model]


@pytest.fixture
async def no_database_client(artifacts_dir: Path):
    """The app with a PostgreSQL URL where nothing listens (the shared server is untouched)."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    settings = Settings(
        database=DatabaseSettings(url=url, timeout_seconds=2),
        artifacts=ArtifactSettings(dir=artifacts_dir),
    )
    async with app_client(settings) as client:
        yield client


async def test_recommendations_fall_back_to_popular_when_database_is_down(no_database_client):
    response = await no_database_client.get("/recommendations/1", params={"k": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] is True and body["fallback_reason"] == "database_unavailable"
    assert len(body["items"]) == 4


async def test_feature_is_503_json_when_database_is_down(no_database_client):
    response = await no_database_client.get("/feature/1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text


async def test_liveness_stays_up_and_readiness_says_why_not(no_database_client):
    live = await no_database_client.get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    assert "database" not in live.json()  # liveness never asks the database
    ready = await no_database_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "unavailable" and ready.json()["model_version"]


async def test_repeated_failures_open_the_breaker_and_fallbacks_become_immediate(
    no_database_client,
):
    for _ in range(3):  # the default threshold
        await no_database_client.get("/recommendations/1")
    assert (await no_database_client.get("/readyz")).json()["breaker"] == "open"
    metrics = (await no_database_client.get("/metrics")).text
    assert "recsys_database_breaker_open 1.0" in metrics
    assert 'recsys_fallbacks_total{reason="database_unavailable"}' in metrics
    body = (await no_database_client.get("/recommendations/1")).json()
    assert body["fallback_reason"] == "database_unavailable"


def _copy(artifacts_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, target)
    return target, target / live_name(target)


def test_corrupt_file_is_refused_with_its_name(artifacts_dir: Path, tmp_path: Path) -> None:
    target, version = _copy(artifacts_dir, tmp_path)
    damaged = version / "query_tower" / "saved_model.pb"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="saved_model.pb: checksum does not match"):
        load_live(target)


def test_missing_index_file_is_refused(artifacts_dir: Path, tmp_path: Path) -> None:
    target, version = _copy(artifacts_dir, tmp_path)
    (version / "candidate_index" / "scann_config.pb").unlink()
    with pytest.raises(ArtifactError, match="scann_config.pb: listed in the manifest but missing"):
        load_live(target)


def test_truncated_manifest_is_refused(artifacts_dir: Path, tmp_path: Path) -> None:
    target, version = _copy(artifacts_dir, tmp_path)
    manifest = version / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ArtifactError, match="manifest.json: not valid JSON"):
        load_live(target)


def test_version_needing_an_input_this_app_cannot_build_is_refused(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    """A version trained by a newer release (a feature this app does not know) fails at
    load, with a message, instead of on every request."""
    target, version = _copy(artifacts_dir, tmp_path)
    path = version / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["feature_spec"]["inputs"]["device_type"] = {"dtype": "string", "shape": [None]}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"cannot build \(device_type\)"):
        load_live(target, verify=False)
    load_version(artifacts_dir, version.name)  # the untouched version still loads
