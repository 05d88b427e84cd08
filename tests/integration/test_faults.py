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
    assert "Traceback" not in response.text


async def test_health_says_degraded_when_database_is_down(no_database_client):
    body = (await no_database_client.get("/healthz")).json()
    assert body["status"] == "degraded" and body["database"] == "unavailable"


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
