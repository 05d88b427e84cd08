"""Readers for the original MovieLens 100K files, and the verified download.

GroupLens' licence forbids redistributing the data set, so it is never committed: it is
downloaded from GroupLens or read from a local folder (`RECSYS_MOVIELENS_DIR`).
"""

import hashlib
import io
import shutil
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    """The files are missing or malformed; the message names file and line."""


@dataclass(frozen=True)
class MovieLens:
    users: list[dict]
    items: list[dict]
    interactions: list[dict]


def read_movielens(folder: Path) -> MovieLens:
    """Parse all three files; raises MovieLensError before anything is written anywhere."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise MovieLensError(f"{folder}: missing MovieLens 100K file(s): {', '.join(missing)}")
    users = [_user(f, n) for f, n in _fields(folder / "u.user", "|", 5)]
    items = [_item(f, n) for f, n in _fields(folder / "u.item", "|", 5 + len(GENRES))]
    rows = [_interaction(f, n) for f, n in _fields(folder / "u.data", "\t", 4)]
    _check_references(rows, users, items)
    # Time order so insertion ids follow time, as serving expects. Ties within a second keep
    # u.data's line order (a stable sort): breaking them by item id would make each user's
    # held-out item the highest id of their last second, an order a sequence model learns.
    rows.sort(key=lambda r: (r["occurred_at"], int(r["user_id"])))
    return MovieLens(users=users, items=items, interactions=rows)


def _fields(path: Path, sep: str, count: int) -> Iterator[tuple[list[str], str]]:
    text = path.read_bytes().decode("latin-1")  # u.item is latin-1; the others are ASCII
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(sep)
        where = f"{path}:{number}"
        if len(fields) != count:
            raise MovieLensError(f"{where}: expected {count} fields, found {len(fields)}")
        yield fields, where


def _user(f: list[str], where: str) -> dict:
    return {
        "id": _id(f[0], where),
        "age": _int(f[1], where, "age"),
        "gender": f[2],
        "occupation": f[3],
        "zip_code": f[4],
    }


def _item(f: list[str], where: str) -> dict:
    flags = f[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise MovieLensError(f"{where}: genre flags must be 0 or 1")
    genres = [name for name, flag in zip(GENRES, flags, strict=True) if flag == "1"]
    return {
        "id": _id(f[0], where),
        "title": f[1],
        "genres": "|".join(genres),
        "release_date": f[2] or None,
        "url": f[4] or None,
    }


def _interaction(f: list[str], where: str) -> dict:
    rating = _int(f[2], where, "rating")
    if not 1 <= rating <= 5:
        raise MovieLensError(f"{where}: rating must be 1..5, found {rating}")
    return {
        "user_id": _id(f[0], where),
        "item_id": _id(f[1], where),
        "rating": float(rating),
        "event_type": "rating",
        "occurred_at": datetime.fromtimestamp(_int(f[3], where, "timestamp"), tz=UTC),
        "where": where,  # kept until the rows are checked against users and items
    }


def _id(value: str, where: str) -> str:
    if not value.isdigit() or int(value) == 0:
        raise MovieLensError(f"{where}: id must be a positive integer, found {value!r}")
    return str(int(value))


def _int(value: str, where: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise MovieLensError(f"{where}: {name} must be an integer, found {value!r}") from None


def _check_references(rows: list[dict], users: list[dict], items: list[dict]) -> None:
    user_ids = {u["id"] for u in users}
    item_ids = {i["id"] for i in items}
    for row in rows:
        where = row.pop("where")
        if row["user_id"] not in user_ids or row["item_id"] not in item_ids:
            raise MovieLensError(
                f"{where}: user {row['user_id']} or item {row['item_id']} is not in u.user / u.item"
            )


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
