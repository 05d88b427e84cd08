"""`recsys models`: list, promote (rollback), split, prune on a private artifacts folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.store import Split, live_name, read_split, set_live
from tests.integration.test_registry import corrupt
from training import lifecycle
from training.bench.swap import clone_version

pytestmark = [pytest.mark.movielens, pytest.mark.model]


@pytest.fixture
def folder(artifacts_dir: Path, tmp_path: Path) -> Path:
    """Three versions, oldest first: base, v2 (live), v3 (corrupt)."""
    base = live_name(artifacts_dir)
    store = tmp_path / "artifacts"
    store.mkdir()
    shutil.copytree(artifacts_dir / base, store / base)
    clone_version(store, store / base, "v2")
    corrupt(clone_version(store, store / base, "v3"))
    set_live(store, "v2")
    return store


def recsys(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"RECSYS_ARTIFACTS_DIR": str(folder)}
    command = [sys.executable, "-m", "training", "models", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_list_shows_every_version_with_its_state(folder: Path) -> None:
    infos = lifecycle.describe(folder)
    assert [i.name for i in infos][:2] == ["v3", "v2"] and len(infos) == 3
    by_name = {i.name: i for i in infos}
    assert by_name["v2"].live and by_name["v2"].problem is None
    assert "checksum does not match" in (by_name["v3"].problem or "")
    shown = recsys(folder, "list")
    assert shown.returncode == 0, shown.stderr
    assert "v2" in shown.stdout and "live" in shown.stdout and "no" in shown.stdout


def test_promote_rolls_back_and_refuses_what_does_not_verify(folder: Path) -> None:
    base = [i.name for i in lifecycle.describe(folder)][-1]
    done = recsys(folder, "promote", base)
    assert done.returncode == 0, done.stdout + done.stderr
    assert live_name(folder) == base
    refused = recsys(folder, "promote", "v3")
    assert refused.returncode == 1 and "does not verify" in refused.stdout
    assert live_name(folder) == base  # unchanged
    missing = recsys(folder, "promote", "nope")
    assert missing.returncode == 1 and "no published version 'nope'" in missing.stdout


def test_split_then_promote_ends_it(folder: Path) -> None:
    base = [i.name for i in lifecycle.describe(folder)][-1]
    assert recsys(folder, "split", base, "--share", "0.5").returncode == 0
    assert read_split(folder) == Split(base, 0.5)
    with pytest.raises(lifecycle.LifecycleError, match="already live"):
        lifecycle.start_split(folder, "v2", 0.5)
    with pytest.raises(lifecycle.LifecycleError, match="share in"):
        lifecycle.start_split(folder, base, 1.5)
    lifecycle.promote(folder, base)
    assert live_name(folder) == base and read_split(folder) is None


def test_prune_keeps_the_newest_the_live_one_and_the_candidate(folder: Path) -> None:
    base = [i.name for i in lifecycle.describe(folder)][-1]
    clone_version(folder, folder / base, "v4")
    lifecycle.start_split(folder, base, 0.2)  # base is the oldest, protected as candidate
    assert lifecycle.prune(folder, 1, dry_run=True) == ["v3"]
    assert (folder / "v3").is_dir()
    assert lifecycle.prune(folder, 1) == ["v3"]  # v4 newest, v2 live, base candidate
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted([base, "v2", "v4"])
