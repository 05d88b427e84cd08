"""MovieLens 100K's original layout read through the shipped `movielens-100k` catalog
config, on tiny files written by each test (the real data is never copied)."""

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.catalog import read_catalog_config
from training import movielens
from training.catalog_files import (
    CatalogFileError,
    check_files,
    find_catalog,
    read_interactions,
    read_items,
    read_users,
)
from training.movielens import GENRES, MovieLensError, verify

CONFIG = read_catalog_config(find_catalog("movielens-100k"))
USERS = ["1|24|M|technician|85711", "2|53|F|other|94043"]
DATA = ["1\t2\t5\t881250949", "2\t1\t3\t874965758", "1\t3\t4\t875000000", "1\t1\t4\t874965758"]


def item_line(item_id: str, title: str, release: str = "01-Jan-1995", genres=()) -> str:
    flags = ["1" if name in genres else "0" for name in GENRES]
    return "|".join([item_id, title, release, "", "http://example.org", *flags])


ITEMS = [
    item_line("1", "Toy Story (1995)", genres=("Animation", "Children's", "Comedy")),
    item_line("2", "Misérables, Les (1995)", genres=("Drama",)),
    item_line("3", "Undated Film", release=""),
]


def write(folder: Path, users=USERS, items=ITEMS, data=DATA) -> Path:
    (folder / "u.user").write_text("\n".join(users) + "\n")
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.data").write_text("\n".join(data) + "\n")
    return folder


def flat(batches) -> list:  # type: ignore[no-untyped-def]
    return [record for batch in batches for record in batch]


def items_by_id(folder: Path) -> dict[str, dict]:
    return {item.id: item.attributes for item in flat(read_items(CONFIG, folder))}


def test_users_keep_every_attribute_under_the_configs_names(tmp_path: Path) -> None:
    users = flat(read_users(CONFIG, write(tmp_path)))
    assert users[0].attributes == {
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip_code": "85711",
    }
    assert [u.id for u in users] == ["1", "2"]


def test_latin1_title_is_decoded(tmp_path: Path) -> None:
    assert items_by_id(write(tmp_path))["2"]["title"] == "Misérables, Les (1995)"


def test_empty_release_date_and_url_become_none(tmp_path: Path) -> None:
    items = items_by_id(write(tmp_path))
    assert items["3"]["release_date"] is None
    assert items["1"] == {
        "title": "Toy Story (1995)",
        "genres": "Animation|Children's|Comedy",
        "release_date": "01-Jan-1995",
        "url": "http://example.org",
    }


def test_genre_flags_become_names_in_the_published_order(tmp_path: Path) -> None:
    items = items_by_id(write(tmp_path))
    assert items["1"]["genres"] == "Animation|Children's|Comedy"
    assert items["2"]["genres"] == "Drama"
    assert items["3"]["genres"] is None  # no flag set: nothing to store


def test_ratings_come_back_in_file_order_with_their_lines(tmp_path: Path) -> None:
    """The loader, not the reader, puts events in time order (in the database)."""
    rows = flat(read_interactions(CONFIG, write(tmp_path)))
    assert [(r.line, r.user_id, r.item_id) for r in rows] == [
        (1, "1", "2"),
        (2, "2", "1"),
        (3, "1", "3"),
        (4, "1", "1"),
    ]
    assert rows[1].occurred_at == datetime.fromtimestamp(874965758, tz=UTC)
    assert rows[0].rating == 5.0 and rows[0].event_type == "rating"


def _bad_genre_flag() -> str:
    return item_line("4", "Bad Flags").rsplit("|", 1)[0] + "|2"


@pytest.mark.parametrize(
    ("name", "lines", "line_number", "reason"),
    [
        ("u.user", [USERS[0], "2|53|F|other"], 2, "expected 5 fields, found 4"),
        ("u.user", ["x1|24|M|technician|85711"], 1, "column 'user_id': must be a positive integer"),
        ("u.user", [USERS[0], "2|old|F|other|94043"], 2, "column 'age': 'old' is not a number"),
        ("u.item", [ITEMS[0], ITEMS[1], item_line("abc", "No Id")], 3, "must be a positive"),
        ("u.item", [ITEMS[0], _bad_genre_flag()], 2, "genre flags must be 0 or 1"),
        ("u.data", [DATA[0], "1\t2\t7\t881250949"], 2, "column 'rating': 7.0 is outside 1.0..5.0"),
        ("u.data", [DATA[0], "1\t2\tfive\t881250949"], 2, "must be a whole number of stars"),
        ("u.data", [DATA[0], "", "1\t2\t5\tlater"], 3, "column 'timestamp': 'later' is not a unix"),
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, name: str, lines: list[str], line_number: int, reason: str
) -> None:
    files = {"u.user": USERS, "u.item": ITEMS, "u.data": DATA, name: lines}
    write(tmp_path, users=files["u.user"], items=files["u.item"], data=files["u.data"])
    where = f"{tmp_path / name}:{line_number}: "
    with pytest.raises(CatalogFileError, match=re.escape(where) + ".*" + re.escape(reason)):
        for reader in (read_users, read_items, read_interactions):
            flat(reader(CONFIG, tmp_path))


def test_missing_file_is_named(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "u.item").unlink()
    with pytest.raises(CatalogFileError, match=re.escape(f"{tmp_path / 'u.item'}: no such file")):
        check_files(CONFIG, tmp_path)


def test_verify_accepts_the_published_bytes_and_rejects_one_changed_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path)
    # Stand-in checksums for the tiny files, so the accept path is exercised too.
    published = {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        for name in movielens.REQUIRED_FILES
    }
    monkeypatch.setattr(movielens, "SHA256", published)
    verify(tmp_path)
    payload = bytearray((tmp_path / "u.data").read_bytes())
    payload[0] ^= 1
    (tmp_path / "u.data").write_bytes(bytes(payload))
    with pytest.raises(MovieLensError, match=re.escape(f"{tmp_path / 'u.data'}: checksum differs")):
        verify(tmp_path)


def test_verify_rejects_files_that_are_not_the_published_data_set(tmp_path: Path) -> None:
    with pytest.raises(MovieLensError, match="checksum differs"):
        verify(write(tmp_path))
