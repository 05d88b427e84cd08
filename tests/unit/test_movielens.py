"""The MovieLens 100K readers on tiny files written by each test (the real data is never copied)."""

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from training import movielens
from training.movielens import GENRES, MovieLensError, read_movielens, verify

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


def items_by_id(folder: Path) -> dict[str, dict]:
    return {item["id"]: item for item in read_movielens(folder).items}


def test_users_keep_every_attribute_as_given(tmp_path: Path) -> None:
    users = read_movielens(write(tmp_path)).users
    assert users[0] == {
        "id": "1",
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip_code": "85711",
    }
    assert [u["id"] for u in users] == ["1", "2"]


def test_latin1_title_is_decoded(tmp_path: Path) -> None:
    assert items_by_id(write(tmp_path))["2"]["title"] == "Misérables, Les (1995)"


def test_empty_release_date_becomes_none(tmp_path: Path) -> None:
    items = items_by_id(write(tmp_path))
    assert items["3"]["release_date"] is None
    assert items["1"]["release_date"] == "01-Jan-1995"


def test_genre_flags_become_names_in_the_published_order(tmp_path: Path) -> None:
    items = items_by_id(write(tmp_path))
    assert items["1"]["genres"] == "Animation|Children's|Comedy"
    assert items["2"]["genres"] == "Drama"
    assert items["3"]["genres"] == ""


def test_interactions_come_back_in_time_order_ties_by_user_then_item(tmp_path: Path) -> None:
    rows = read_movielens(write(tmp_path)).interactions
    # 874965758 is shared by (2, 1) and (1, 1): user 1 goes first.
    pairs = [(r["user_id"], r["item_id"]) for r in rows]
    assert pairs == [("1", "1"), ("2", "1"), ("1", "3"), ("1", "2")]
    assert rows[0]["occurred_at"] == datetime.fromtimestamp(874965758, tz=UTC)
    assert rows[-1]["rating"] == 5.0


def _bad_genre_flag() -> str:
    return item_line("4", "Bad Flags").rsplit("|", 1)[0] + "|2"


@pytest.mark.parametrize(
    ("name", "lines", "line_number", "reason"),
    [
        ("u.user", [USERS[0], "2|53|F|other"], 2, "expected 5 fields, found 4"),
        ("u.user", ["x1|24|M|technician|85711"], 1, "id must be a positive integer"),
        ("u.item", [ITEMS[0], ITEMS[1], item_line("abc", "No Id")], 3, "id must be a positive"),
        ("u.item", [ITEMS[0], _bad_genre_flag()], 2, "genre flags must be 0 or 1"),
        ("u.data", [DATA[0], "1\t2\t7\t881250949"], 2, "rating must be 1..5, found 7"),
        ("u.data", [DATA[0], "1\t2\tfive\t881250949"], 2, "rating must be an integer"),
        ("u.data", [DATA[0], "9\t2\t5\t881250949"], 2, "user 9 or item 2 is not in"),
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, name: str, lines: list[str], line_number: int, reason: str
) -> None:
    files = {"u.user": USERS, "u.item": ITEMS, "u.data": DATA, name: lines}
    write(tmp_path, users=files["u.user"], items=files["u.item"], data=files["u.data"])
    where = f"{tmp_path / name}:{line_number}: "
    with pytest.raises(MovieLensError, match=re.escape(where) + ".*" + re.escape(reason)):
        read_movielens(tmp_path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "u.item").unlink()
    with pytest.raises(MovieLensError, match=r"missing MovieLens 100K file\(s\): u\.item$"):
        read_movielens(tmp_path)


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


def test_unknown_reference_after_a_blank_line_names_its_own_line(tmp_path: Path) -> None:
    write(tmp_path, data=[DATA[0], "", "9\t2\t5\t881250949"])
    with pytest.raises(MovieLensError, match=re.escape(f"{tmp_path / 'u.data'}:3: ")):
        read_movielens(tmp_path)


def test_ratings_in_the_same_second_keep_file_order(tmp_path: Path) -> None:
    """Ordering ties by item id would make the held-out item the highest id of the user's
    last second, a pattern a sequence model can learn; file order carries no such signal."""
    same_second = ["1\t3\t4\t875000000", "1\t1\t5\t875000000", "1\t2\t3\t875000000"]
    parsed = read_movielens(write(tmp_path, data=same_second))
    assert [row["item_id"] for row in parsed.interactions] == ["3", "1", "2"]
