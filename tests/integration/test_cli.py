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
    [[], ["db", "upgrade"], ["data", "fetch"], ["data", "load"], ["train"], ["serve"]],
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
