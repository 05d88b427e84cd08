"""The API image is built from the serving dependencies alone (pyproject's core list;
the training group is not installed there), so serving must work without any library of
the training group. Checked in a fresh interpreter where importing them fails as if they
were not installed (some are imported opportunistically when present, e.g. tf_keras by
TensorFlow): it starts the real app (version loaded, database opened) and answers."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.movielens, pytest.mark.model]
ROOT = Path(__file__).resolve().parents[2]
# Import names of the training group's distributions, where they differ.
IMPORT_NAMES = {"tf-keras": "tf_keras", "tensorflow-recommenders": "tensorflow_recommenders",
                "scikit-surprise": "surprise"}  # fmt: skip

SERVE_WITHOUT = """
import json, sys

class NotInstalled:
    # Wraps a finder: for the blocked packages it finds nothing, as when not installed.
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

BLOCKED = set(json.loads(sys.argv[1]))
sys.meta_path[:] = [NotInstalled(finder) for finder in sys.meta_path]
from fastapi.testclient import TestClient
from app.main import create_app
with TestClient(create_app()) as client:
    assert client.get("/recommendations/1").status_code == 200
print(json.dumps(sorted(sys.modules)))
"""


def training_only_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["optional-dependencies"]["training"]:
        distribution = requirement.split("=")[0].split("<")[0].split(">")[0].strip()
        names.add(IMPORT_NAMES.get(distribution, distribution.replace("-", "_")))
    return names


@pytest.mark.parametrize("loaded_database", ["sqlite"], indirect=True)
def test_serving_works_without_the_training_group(
    loaded_database: str, artifacts_dir: Path
) -> None:
    env = {"RECSYS_DATABASE_URL": loaded_database, "RECSYS_ARTIFACTS_DIR": str(artifacts_dir)}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT, json.dumps(sorted(training_only_modules()))],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}
    training = training_only_modules()
    assert {"tensorflow", "scann", "fastapi"} <= imported  # it really served
    assert {"tensorflow_recommenders", "tf_keras", "optuna", "scipy"} <= training
    assert not imported & training, imported & training
