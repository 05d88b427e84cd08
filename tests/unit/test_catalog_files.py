"""The catalog readers on small files written by each test: CSV (quotes, newlines,
missing values), Parquet, timestamps, and errors that name file, line and column."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.catalog import CatalogConfig, parse_catalog_config
from training.catalog_files import (
    CatalogFileError,
    check_files,
    find_catalog,
    read_interactions,
    read_items,
    read_users,
    shipped_catalogs,
)


def config(**changes) -> CatalogConfig:  # type: ignore[no-untyped-def]
    """A small generic catalog; `changes` replace whole sections or top-level keys."""
    raw = {
        "name": "shop",
        "users": {
            "file": "users.csv",
            "id": "uid",
            "fields": [
                {"name": "country"},
                {"name": "born", "column": "birth_year", "kind": "numeric"},
            ],
        },
        "items": {
            "file": "items.csv",
            "id": "sku",
            "fields": [
                {"name": "title", "kind": "text"},
                {"name": "genres", "kind": "multi_categorical", "missing": ["(none)"]},
                {"name": "year", "column": "title", "kind": "date", "pattern": r"\((\d{4})\)$"},
                {"name": "price", "kind": "numeric"},
            ],
        },
        "interactions": {
            "file": "events.csv",
            "user": "uid",
            "item": "sku",
            "timestamp": "at",
            "rating": "stars",
            "rating_range": [0.5, 5.0],
        },
        **changes,
    }
    return parse_catalog_config(raw)


USERS = "uid,country,birth_year\nu1,DE,1980\nu2,,\n"
ITEMS = (
    "sku,title,genres,price\n"
    'i1,"American President, The (1995)",Comedy|Drama,9.5\n'
    'i2,"Two\nLines (2001)",(none),12\n'
    'i3,"Say ""Hi"" (no year)",,\n'
)
EVENTS = "uid,sku,at,stars\nu1,i1,881250949,4.5\nu2,i2,1998-01-01T10:00:00,\nu1,i3,2000.5,0.5\n"


def write(folder: Path, **files: str) -> Path:
    defaults = {"users.csv": USERS, "items.csv": ITEMS, "events.csv": EVENTS}
    for name, text in {**defaults, **{k.replace("_", "."): v for k, v in files.items()}}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def flat(batches) -> list:  # type: ignore[no-untyped-def]
    return [record for batch in batches for record in batch]


def test_users_carry_every_declared_field_numbers_as_numbers(tmp_path: Path) -> None:
    users = flat(read_users(config(), write(tmp_path)))
    assert [(u.line, u.id, u.attributes) for u in users] == [
        (2, "u1", {"country": "DE", "born": 1980}),
        (3, "u2", {"country": None, "born": None}),
    ]


def test_quoted_commas_newlines_missing_values_and_patterns(tmp_path: Path) -> None:
    items = {i.id: i for i in flat(read_items(config(), write(tmp_path)))}
    assert items["i1"].attributes == {
        "title": "American President, The (1995)",
        "genres": "Comedy|Drama",
        "year": "1995",
        "price": 9.5,
    }
    assert items["i2"].attributes == {
        "title": "Two\nLines (2001)",
        "genres": None,  # "(none)" is declared missing
        "year": "2001",
        "price": 12,
    }
    assert items["i3"].attributes["title"] == 'Say "Hi" (no year)'
    assert items["i3"].attributes["year"] is None  # the pattern does not match
    assert items["i3"].line == 5  # i2 spans lines 3 and 4


def test_events_unix_iso_fractional_ratings_and_the_default_event_type(tmp_path: Path) -> None:
    events = flat(read_interactions(config(), write(tmp_path)))
    assert [(e.user_id, e.item_id, e.rating, e.event_type) for e in events] == [
        ("u1", "i1", 4.5, "interaction"),
        ("u2", "i2", None, "interaction"),
        ("u1", "i3", 0.5, "interaction"),
    ]
    assert events[0].occurred_at == datetime.fromtimestamp(881250949, UTC)
    assert events[1].occurred_at == datetime(1998, 1, 1, 10, tzinfo=UTC)  # no zone: UTC
    assert events[2].occurred_at == datetime.fromtimestamp(2000.5, UTC)


@pytest.mark.parametrize(
    ("timestamp_format", "value", "expected"),
    [
        ("unix", "0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("iso", "2020-05-01T12:00:00+02:00", datetime(2020, 5, 1, 10, tzinfo=UTC)),
        ("iso", "2020-05-01 12:00:00Z", datetime(2020, 5, 1, 12, tzinfo=UTC)),
        ("auto", "2020-05-01", datetime(2020, 5, 1, tzinfo=UTC)),
        ("auto", "1588334400", datetime(2020, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamp_formats(
    tmp_path: Path, timestamp_format: str, value: str, expected: datetime
) -> None:
    spec = {"file": "events.csv", "user": "uid", "item": "sku", "timestamp": "at"}
    cfg = config(interactions={**spec, "timestamp_format": timestamp_format})
    write(tmp_path, events_csv=f"uid,sku,at\nu1,i1,{value}\n")
    assert flat(read_interactions(cfg, tmp_path))[0].occurred_at == expected


def test_event_types_come_from_their_column(tmp_path: Path) -> None:
    spec = {"file": "events.csv", "user": "uid", "item": "sku", "timestamp": "at"}
    cfg = config(interactions={**spec, "event_type": "kind", "event_types": ["view", "buy"]})
    write(tmp_path, events_csv="uid,sku,at,kind\nu1,i1,5,buy\nu1,i2,6,\nu2,i1,7,return\n")
    with pytest.raises(CatalogFileError, match=r"events\.csv:4: column 'kind': 'return' is not"):
        flat(read_interactions(cfg, tmp_path))
    write(tmp_path, events_csv="uid,sku,at,kind\nu1,i1,5,buy\nu1,i2,6,\n")
    assert [e.event_type for e in flat(read_interactions(cfg, tmp_path))] == ["buy", "view"]


@pytest.mark.parametrize(
    ("files", "where", "reason"),
    [
        (
            {"events_csv": EVENTS + "u1,i1,5,7\n"},
            "events.csv:5",
            "column 'stars': 7.0 is outside 0.5..5.0",
        ),
        (
            {"events_csv": EVENTS + "u1,i1,soon,3\n"},
            "events.csv:5",
            "column 'at': 'soon' is neither",
        ),
        ({"events_csv": EVENTS + "u1,,5,3\n"}, "events.csv:5", "column 'sku': missing id"),
        (
            {"events_csv": EVENTS + "u1,i1,5,nan\n"},
            "events.csv:5",
            "column 'stars': 'nan' is not a finite",
        ),
        (
            {"events_csv": EVENTS + "u1,i1,5\n"},
            "events.csv:5",
            "expected 4 columns as in the header, found 3",
        ),
        (
            {"users_csv": USERS + "u3,FR,nineteen\n"},
            "users.csv:4",
            "column 'birth_year': 'nineteen' is not a number",
        ),
        (
            {"items_csv": ITEMS + "i4,Film,,cheap\n"},
            "items.csv:6",
            "column 'price': 'cheap' is not a number",
        ),
        ({"items_csv": ITEMS + 'i5,"unclosed\n'}, "items.csv:6", "unexpected end of data"),
    ],
)
def test_a_malformed_row_names_file_line_and_column(
    tmp_path: Path, files: dict[str, str], where: str, reason: str
) -> None:
    write(tmp_path, **files)
    cfg = config()
    pattern = re.escape(str(tmp_path / where)) + ": .*" + re.escape(reason)
    with pytest.raises(CatalogFileError, match=pattern):
        for reader in (read_users, read_items, read_interactions):
            flat(reader(cfg, tmp_path))


def test_missing_files_and_columns_are_named_before_any_row(tmp_path: Path) -> None:
    write(tmp_path, items_csv="sku,title,price\ni1,A (1999),1\n")
    with pytest.raises(CatalogFileError, match=r"items\.csv: no column 'genres' \(columns: sku"):
        check_files(config(), tmp_path)
    write(tmp_path)
    (tmp_path / "users.csv").unlink()
    with pytest.raises(CatalogFileError, match=r"users\.csv: no such file \(the catalog's users"):
        check_files(config(), tmp_path)
    check_files(config(users=None), tmp_path)  # a catalog without a users file


def test_parquet_files_are_read_in_batches_with_the_same_checks(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    items = pa.table(
        {
            "sku": pa.array([1, 2], pa.int64()),
            "title": ["Heat (1995)", "Up (2009)"],
            "genres": ["Crime", None],
            "price": [3.0, 2.5],
            "unused": ["x", "y"],
        }
    )
    events = pa.table(
        {
            "uid": ["u1", "u1"],
            "sku": pa.array([2, 1], pa.int32()),
            "at": pa.array([datetime(2020, 1, 1), datetime(2020, 1, 2)], pa.timestamp("us")),
            "stars": [4.5, 6.0],
        }
    )
    pq.write_table(items, tmp_path / "items.parquet")
    pq.write_table(events, tmp_path / "events.parquet")
    cfg = config(users=None, items={**config().items.model_dump(), "file": "items.parquet"})
    cfg = cfg.model_copy(
        update={"interactions": cfg.interactions.model_copy(update={"file": "events.parquet"})}
    )
    parsed = flat(read_items(cfg, tmp_path))
    assert [(i.id, i.attributes) for i in parsed] == [
        ("1", {"title": "Heat (1995)", "genres": "Crime", "year": "1995", "price": 3}),
        ("2", {"title": "Up (2009)", "genres": None, "year": "2009", "price": 2.5}),
    ]
    with pytest.raises(
        CatalogFileError, match=r"events\.parquet:2: column 'stars': 6\.0 is outside"
    ):
        flat(read_interactions(cfg, tmp_path))
    pq.write_table(events.slice(0, 1), tmp_path / "events.parquet")
    event = flat(read_interactions(cfg, tmp_path))[0]
    assert (event.item_id, event.occurred_at) == ("2", datetime(2020, 1, 1, tzinfo=UTC))
    pq.write_table(items.drop_columns(["price"]), tmp_path / "items.parquet")
    with pytest.raises(
        CatalogFileError, match=r"no column 'price' \(columns: sku, title, genres, unused\)"
    ):
        check_files(cfg, tmp_path)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "users.csv").write_bytes(b"\xef\xbb\xbf" + USERS.encode())
    assert flat(read_users(config(), tmp_path))[0].id == "u1"


def test_shipped_catalogs_are_found_by_name_and_files_by_path(tmp_path: Path) -> None:
    assert {"movielens-100k", "movielens-latest-small"} <= set(shipped_catalogs())
    assert find_catalog("movielens-100k").name == "movielens-100k.toml"
    own = tmp_path / "mine.toml"
    own.write_text("")
    assert find_catalog(str(own)) == own
    with pytest.raises(CatalogFileError, match="nor a shipped catalog"):
        find_catalog("no-such-catalog")
