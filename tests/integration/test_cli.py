"""The `recsys` command line as a user runs it (a real subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

RECSYS = [sys.executable, "-m", "training"]


def recsys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RECSYS, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db", "upgrade"],
        ["data", "fetch"],
        ["data", "load"],
        ["data", "synth"],
        ["train"],
        ["serve"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = recsys(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_serve_help_lists_host_port_workers() -> None:
    out = recsys("serve", "--help").stdout
    assert "--host" in out and "--port" in out and "--workers" in out


def test_load_names_file_and_line_of_a_malformed_row(tmp_path: Path, databases) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|oops|F|other|94043\n")
    (folder / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||u" + "|0" * 19 + "\n")
    (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    url = databases.migrated("sqlite")
    result = recsys(
        "data", "load", "--movielens-dir", str(folder), env={"RECSYS_DATABASE_URL": url}
    )
    assert result.returncode == 1
    assert f"{folder / 'u.user'}:2" in result.stdout and "age" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_synth_then_load_as_the_synth_command_says(tmp_path: Path, databases) -> None:
    url = databases.migrated("sqlite")
    out = tmp_path / "shop"
    made = recsys(
        "data", "synth", "--users", "30", "--items", "20", "--interactions", "400",
        "--out", str(out), "--seed", "2",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    command = next(line for line in made.stdout.splitlines() if "recsys data load" in line)
    args = command.split("recsys ", 1)[1].split()
    loaded = recsys(*args, env={"RECSYS_DATABASE_URL": url})
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "users=30, items=20, interactions=400" in loaded.stdout
    assert "rows/s" in loaded.stdout and "peak memory" in loaded.stdout


def test_load_refuses_an_unknown_catalog_and_a_second_one(tmp_path: Path, databases) -> None:
    url = databases.migrated("sqlite")
    env = {"RECSYS_DATABASE_URL": url}
    unknown = recsys("data", "load", "--catalog", "no-such-catalog", env=env)
    assert unknown.returncode == 1 and "movielens-latest-small" in unknown.stdout
    no_data = recsys("data", "load", "--catalog", "movielens-latest-small", env=env)
    assert no_data.returncode == 1 and "--data-dir" in no_data.stdout
    for seed in ("1", "2"):
        recsys("data", "synth", "--users", "5", "--items", "5", "--interactions", "20",
               "--out", str(tmp_path / seed), "--seed", seed)  # fmt: skip
    first = recsys("data", "load", "--catalog", str(tmp_path / "1" / "catalog.toml"), env=env)
    assert first.returncode == 0, first.stdout
    # Same name, other files: the same catalog, loaded again (upserted), not refused.
    again = recsys("data", "load", "--catalog", str(tmp_path / "2" / "catalog.toml"), env=env)
    assert again.returncode == 0, again.stdout
    latest = tmp_path / "latest"
    latest.mkdir()
    (latest / "movies.csv").write_text("movieId,title,genres\n1,Heat (1995),Crime\n")
    (latest / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    other = recsys(
        "data", "load", "--catalog", "movielens-latest-small", "--data-dir", str(latest), env=env
    )
    assert other.returncode == 1
    assert "holds catalog 'synthetic-shop'" in other.stdout
    assert "Traceback" not in other.stdout + other.stderr


def test_fetch_verifies_a_local_folder(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("not the data set\n")
    result = recsys("data", "fetch", "--movielens-dir", str(tmp_path))
    assert result.returncode == 1
    assert "missing" in result.stdout or "checksum" in result.stdout


def test_train_without_data_says_what_to_do(tmp_path: Path, databases) -> None:
    url = databases.migrated("sqlite")
    result = recsys(
        "train", env={"RECSYS_DATABASE_URL": url, "RECSYS_ARTIFACTS_DIR": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "recsys data load" in result.stdout
