"""The served process hands the interpreter lock over at the configured interval
(RECSYS_SERVING_GIL_SWITCH_INTERVAL_MS), not Python's 5 ms default."""

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import ArtifactSettings, DatabaseSettings, ServingSettings, Settings
from tests.conftest import app_client

pytestmark = [pytest.mark.movielens, pytest.mark.model]


@pytest.mark.parametrize("loaded_database", ["sqlite"], indirect=True)
async def test_the_app_serves_with_the_configured_switch_interval(
    loaded_database: str, artifacts_dir: Path
) -> None:
    before = sys.getswitchinterval()
    settings = Settings(
        database=DatabaseSettings(url=loaded_database),
        artifacts=ArtifactSettings(dir=artifacts_dir),
        serving=ServingSettings(gil_switch_interval_ms=0.3),
    )
    try:
        async with app_client(settings) as client:
            # Set before the version loads; the load's own shorter interval is undone.
            assert sys.getswitchinterval() == pytest.approx(0.0003)
            assert (await client.get("/recommendations/1")).status_code == 200
    finally:
        sys.setswitchinterval(before)  # process-wide: not left to the other tests


def test_the_interval_must_be_positive() -> None:
    assert ServingSettings().gil_switch_interval_ms == 0.5
    with pytest.raises(ValidationError, match="greater than 0"):
        ServingSettings(gil_switch_interval_ms=0)
