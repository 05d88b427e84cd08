"""`recsys data fetch`'s download path, exercised offline through a file:// URL."""

import io
import os
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require
from training.movielens import MovieLensError, fetch, verify


def make_zip(path: Path, files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"ml-100k/{name}", content)
    path.write_bytes(buffer.getvalue())
    return path.resolve().as_uri()


def original_files() -> dict[str, bytes]:
    folder = Path(os.environ.get("RECSYS_MOVIELENS_DIR", "/nonexistent"))
    require((folder / "u.data").is_file(), "set RECSYS_MOVIELENS_DIR (MovieLens 100K)")
    names = ["u.data", "u.item", "u.user", "u.genre", "README"]
    return {name: (folder / name).read_bytes() for name in names}


@pytest.mark.movielens
def test_download_is_unpacked_and_verified(tmp_path: Path) -> None:
    url = make_zip(tmp_path / "ml-100k.zip", original_files())
    folder = fetch(url, tmp_path / "data")
    assert folder == tmp_path / "data" / "ml-100k"
    verify(folder)  # raises if any file differs from the published data set


@pytest.mark.movielens
def test_tampered_download_is_rejected_and_nothing_is_kept(tmp_path: Path) -> None:
    files = original_files()
    files["u.data"] = files["u.data"].replace(b"\t5\t", b"\t1\t", 1)
    url = make_zip(tmp_path / "ml-100k.zip", files)
    with pytest.raises(MovieLensError, match="do not match the published MovieLens 100K"):
        fetch(url, tmp_path / "data")
    assert not (tmp_path / "data" / "ml-100k").exists()
    assert not (tmp_path / "data" / ".ml-100k.partial").exists()


def test_archive_without_the_data_set_is_rejected(tmp_path: Path) -> None:
    url = make_zip(tmp_path / "other.zip", {"u.data": b"1\t1\t5\t1\n"})
    with pytest.raises(MovieLensError, match="not a MovieLens 100K archive"):
        fetch(url, tmp_path / "data")
