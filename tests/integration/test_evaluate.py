"""`recsys evaluate` end to end on a slice of MovieLens: one table, JSON and PNG."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.movielens, pytest.mark.model]

METHODS = {
    "two-stage (served)",
    "two-tower retrieval only",
    "popularity",
    "EASE",
    "ALS (implicit)",
    "item transitions (sequential)",
    "SVD (surprise)",
}


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, databases, movielens) -> tuple[Path, subprocess.CompletedProcess]:
    from tests.conftest import load_into

    url = databases.migrated("sqlite")
    load_into(url, movielens)
    folder = tmp_path_factory.mktemp("evaluate")
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": url,
        "RECSYS_ARTIFACTS_DIR": str(folder / "a"),
        "RECSYS_TRAINING_CONFIG_FILE": str(folder / "none.json"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "evaluate",
            "--json",
            str(folder / "report.json"),
            "--max-users",
            "60",
            "--epochs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, result


def test_report_holds_every_method_with_its_metrics(evaluation) -> None:
    folder, _ = evaluation
    report = json.loads((folder / "report.json").read_text())
    assert set(report["methods"]) == METHODS
    served = report["methods"]["two-stage (served)"]
    for key in ("hr@10", "hr@50", "hr@100", "ndcg@10", "mrr", "coverage@10", "rmse", "mae"):
        assert served[key] is not None and served[key] >= 0
    assert len(served["hr_curve"]) == 100
    assert report["methods"]["SVD (surprise)"]["rmse"] > 0
    assert report["methods"]["SVD (surprise)"]["hr@10"] is None
    assert set(report["baseline_tuning"]) == {"ease", "als", "svd", "sequential"}
    assert report["skipped"] == {}  # MovieLens fits every baseline
    sequential = report["methods"]["item transitions (sequential)"]
    assert 0 < sequential["hr@10"] <= 1 and sequential["rmse"] is None


def test_chart_and_table_are_produced(evaluation) -> None:
    folder, result = evaluation
    png = (folder / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    for name in METHODS:
        assert name in result.stdout


def test_evaluated_version_records_the_comparison(evaluation) -> None:
    folder, _ = evaluation
    (version,) = [p for p in (folder / "a").iterdir() if p.is_dir()]
    manifest = json.loads((version / "manifest.json").read_text())
    assert set(manifest["evaluation"]["comparison"]) == METHODS
    assert not (folder / "a" / "LIVE").exists()  # evaluate does not publish unless asked
