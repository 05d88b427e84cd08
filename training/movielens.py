"""MovieLens 100K in GroupLens' original layout (u.user, u.item, u.data), and its verified download.

The catalog reader (training/catalog_files.py) handles files, lines and the config's
fields; this module only knows what one line of each file holds: `split_line` turns it
into the named columns the shipped `movielens-100k` config declares (u.item's 19 genre
flags become one `|`-joined `genres` column), with MovieLens' own checks.

GroupLens' licence forbids redistributing the data set, so it is never committed: it is
downloaded from GroupLens or read from a local folder (`RECSYS_MOVIELENS_DIR`).
"""

import hashlib
import io
import shutil
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

REQUIRED_FILES = ("u.data", "u.item", "u.user")
# sha256 of the files inside the official ml-100k.zip: a download is accepted only if
# its contents are exactly the published data set.
SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


class MovieLensError(ValueError):
    """The download or a local folder is not the published data set."""


class Layout(NamedTuple):
    """One MovieLens file: its separator, fields per line, and the columns they become."""

    separator: str
    fields: int
    columns: tuple[str, ...]
    convert: Callable[[list[str]], list[str]]


def _user(f: list[str]) -> list[str]:
    return [_id(f[0], "user_id"), *f[1:]]


def _item(f: list[str]) -> list[str]:
    flags = f[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise ValueError("genre flags must be 0 or 1")
    genres = "|".join(name for name, flag in zip(GENRES, flags, strict=True) if flag == "1")
    return [_id(f[0], "item_id"), *f[1:5], genres]


def _rating(f: list[str]) -> list[str]:
    if not f[2].isdigit():  # MovieLens 100K has whole stars only
        raise ValueError(f"column 'rating': must be a whole number of stars, found {f[2]!r}")
    return [_id(f[0], "user_id"), _id(f[1], "item_id"), f[2], f[3]]


# Keyed like the catalog config's sections: which file plays which part is the config's.
LAYOUTS = {
    "users": Layout("|", 5, ("user_id", "age", "gender", "occupation", "zip_code"), _user),
    "items": Layout(
        "|",
        5 + len(GENRES),
        ("item_id", "title", "release_date", "video_release_date", "url", "genres"),
        _item,
    ),
    "interactions": Layout("\t", 4, ("user_id", "item_id", "rating", "timestamp"), _rating),
}


def split_line(part: str, line: str) -> list[str]:
    """One line of the users, items or interactions file as its named columns' values;
    ValueError (naming the column where there is one) when it is malformed."""
    layout = LAYOUTS[part]
    fields = line.split(layout.separator)
    if len(fields) != layout.fields:
        raise ValueError(f"expected {layout.fields} fields, found {len(fields)}")
    return layout.convert(fields)


def _id(value: str, column: str) -> str:
    if not value.isdigit() or int(value) == 0:
        raise ValueError(f"column '{column}': must be a positive integer, found {value!r}")
    return str(int(value))


def fetch(url: str, target: Path, timeout: float = 60.0) -> Path:
    """Download the official zip, verify every file's checksum, unpack into target/ml-100k."""
    folder = target / "ml-100k"
    if _verified(folder):
        return folder
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
        payload = response.read()
    staging = target / ".ml-100k.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            for name in REQUIRED_FILES + ("u.genre", "README"):
                (staging / name).write_bytes(archive.read(f"ml-100k/{name}"))
    except (zipfile.BadZipFile, KeyError) as exc:
        shutil.rmtree(staging)
        raise MovieLensError(f"{url}: not a MovieLens 100K archive ({exc})") from None
    if not _verified(staging):
        shutil.rmtree(staging)
        raise MovieLensError(f"{url}: downloaded files do not match the published MovieLens 100K")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def verify(folder: Path) -> None:
    """Raise MovieLensError unless folder holds the exact published files."""
    for name in REQUIRED_FILES:
        path = folder / name
        if not path.is_file():
            raise MovieLensError(f"{folder}: missing {name}")
        if hashlib.sha256(path.read_bytes()).hexdigest() != SHA256[name]:
            raise MovieLensError(f"{path}: checksum differs from the published MovieLens 100K")


def _verified(folder: Path) -> bool:
    try:
        verify(folder)
    except MovieLensError:
        return False
    return True
