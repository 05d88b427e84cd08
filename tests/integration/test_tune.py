"""`recsys tune` writes the best validation config, and `recsys train` picks it up."""

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.movielens, pytest.mark.model]


def recsys(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
    )


def test_tune_writes_a_config_that_train_uses(tmp_path, databases, movielens) -> None:
    from tests.conftest import load_into

    url = databases.migrated("sqlite")
    load_into(url, movielens)
    config_file = tmp_path / "train_config.json"
    env = {
        "RECSYS_DATABASE_URL": url,
        "RECSYS_ARTIFACTS_DIR": str(tmp_path / "a"),
        "RECSYS_TRAINING_CONFIG_FILE": str(config_file),
    }
    tuned = recsys("tune", "--trials", "2", "--max-users", "40", env=env)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    assert "validation ndcg@10" in tuned.stdout
    assert re.search(
        r"trial 0: validation ndcg@10=0\.\d{4} hr@10=0\.\d{4} rmse=\d\.\d{4}", tuned.stdout
    )
    best = json.loads(config_file.read_text())
    assert {"embedding_dim", "temperature", "epochs", "ranker"} <= set(best)

    trained = recsys("train", "--max-users", "40", env=env)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert f"training config: {config_file}" in trained.stdout
    (version,) = [p for p in (tmp_path / "a").iterdir() if p.is_dir()]
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["train_config"] == best
