"""`recsys bench swap` end to end: 20 versions go live one by one under 8 clients through a
real uvicorn; no request fails, every answer names a version that was live, memory does
not grow with the swaps. (Latency figures are printed by the command, not asserted.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.movielens, pytest.mark.model]


# The swap is the same on either database; PostgreSQL, as in production, keeps CI shorter.
@pytest.mark.parametrize("loaded_database", ["postgres"], indirect=True)
def test_twenty_swaps_under_load_lose_nothing(
    loaded_database: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "swap.json"
    command = [sys.executable, "-m", "training", "bench", "swap", "--versions", "20"]
    command += ["--clients", "8", "--steady", "3", "--json", str(out)]
    env = os.environ | {
        "RECSYS_DATABASE_URL": loaded_database,
        "RECSYS_ARTIFACTS_DIR": str(artifacts_dir),
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "p99" in done.stdout and "after the last" in done.stdout
    report = json.loads(out.read_text())
    assert report["steady"]["requests"] > 0 and report["swapping"]["requests"] > 0
    assert report["failed"] == 0
    assert report["invalid_versions"] == 0
    assert report["versions_served"] == 21  # the first one and each of the 20 published
    assert report["memory_growth"] < 0.10, report["memory_mb"]
    assert not any(p.name.endswith("-swap001") for p in artifacts_dir.iterdir())  # private copy
