"""`recsys bench serve --items`: its own database and artifacts, built once, then reused."""

from pathlib import Path

import pytest
from rich.console import Console

from app.artifacts import load_live
from app.store import live_name
from training.bench.scale import Scale, prepare

pytestmark = pytest.mark.model


def test_synthetic_catalog_is_loaded_trained_and_published_apart(tmp_path: Path) -> None:
    users_db = tmp_path / "yours.db"
    scale = Scale(items=600, users=60, interactions=1500, folder=tmp_path / "bench")
    url, artifacts = prepare(scale, f"sqlite+aiosqlite:///{users_db}", Console(quiet=True))
    assert not users_db.exists()  # the configured database is never touched
    assert url.endswith("bench-600.db") and artifacts.parent == scale.folder
    version = load_live(artifacts)
    assert version.size == 600 and version.metadata is not None
    first = live_name(artifacts)
    again, _ = prepare(scale, f"sqlite+aiosqlite:///{users_db}", Console(quiet=True))
    assert again == url and live_name(artifacts) == first  # reused, not retrained
