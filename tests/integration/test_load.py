"""`load_catalog` against real SQLite and PostgreSQL databases, on small catalogs written
by each test: the latest-small layout, idempotence, all or nothing, one catalog per
database, the order of same-second events, references to unknown rows."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.catalog import CatalogConfig, parse_catalog_config, read_catalog_config
from app.db.engine import create_engine
from app.settings import DatabaseSettings
from tests.conftest import BACKENDS, backend_available
from training.catalog_files import CatalogFileError, find_catalog
from training.load import LoadError, load_catalog
from training.synth import write_synthetic

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def shop(name: str = "shop", users: bool = True, same_time_order: str = "hashed") -> CatalogConfig:
    raw = {
        "name": name,
        "same_time_order": same_time_order,
        "items": {"file": "items.csv", "id": "sku", "fields": [{"name": "title", "kind": "text"}]},
        "interactions": {"file": "events.csv", "user": "uid", "item": "sku", "timestamp": "at"},
    }
    if users:
        raw["users"] = {"file": "users.csv", "id": "uid", "fields": [{"name": "plan"}]}
    return parse_catalog_config(raw)


def write(folder: Path, **files: str) -> Path:
    for name, content in files.items():
        (folder / name.replace("_", ".")).write_text(content)
    return folder


USERS = "uid,plan\nu1,free\nu2,pro\n"
ITEMS = 'sku,title\ni1,"Heat, the film"\ni2,Up\n'
EVENTS = "uid,sku,at\nu1,i2,2020-01-02T00:00:00\nu2,i1,2020-01-01T00:00:00\nu1,i1,2020-01-03\n"


def load(url: str, config: CatalogConfig, folder: Path) -> dict[str, int]:
    async def go() -> dict[str, int]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            return await load_catalog(engine, config, folder)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def query(url: str, sql: str) -> list[tuple]:
    async def go() -> list[tuple]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def snapshot(url: str) -> dict[str, list]:
    return {
        "catalog": query(url, "SELECT name FROM catalog"),
        "users": query(url, "SELECT id, attributes FROM users ORDER BY id"),
        "items": query(url, "SELECT id, attributes FROM items ORDER BY id"),
        "interactions": query(
            url, "SELECT id, user_id, item_id, rating, event_type, occurred_at FROM interactions"
        ),
    }


def as_json(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's driver decodes JSONB, SQLite returns text."""
    return json.loads(value) if isinstance(value, str) else value


def attributes(url: str, table: str) -> dict[str, dict]:
    rows = query(url, f"SELECT id, attributes FROM {table}")
    return {ident: as_json(value) for ident, value in rows}


def database(databases, backend: str) -> str:  # type: ignore[no-untyped-def]
    backend_available(backend)
    return databases.migrated(backend)


MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '11,"American President, The (1995)",Comedy|Drama|Romance\n'
    '1797,"Everything Is Illuminated ""Special"" (2005)",Comedy|Drama\n'
    "176601,Black Mirror,(no genres listed)\n"
)
RATINGS = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,11,4.5,964982703\n"
    "1,176601,0.5,964982224\n"
    "7,1797,5.0,1106635946\n"
)


def test_latest_small_layout_loads_with_the_shipped_config(
    tmp_path: Path, databases, backend: str
) -> None:
    url = database(databases, backend)
    config = read_catalog_config(find_catalog("movielens-latest-small"))
    folder = write(tmp_path, movies_csv=MOVIES, ratings_csv=RATINGS)
    assert load(url, config, folder) == {"users": 2, "items": 4, "interactions": 4}
    items = attributes(url, "items")
    assert items["11"] == {
        "title": "American President, The (1995)",
        "genres": "Comedy|Drama|Romance",
        "year": "1995",
    }
    assert items["1797"]["title"] == 'Everything Is Illuminated "Special" (2005)'
    assert items["176601"] == {"title": "Black Mirror", "genres": None, "year": None}
    assert attributes(url, "users") == {"1": {}, "7": {}}  # no user file: ids alone
    ratings = query(url, "SELECT item_id, rating FROM interactions WHERE user_id = '1'")
    assert sorted(ratings) == [("1", 4.0), ("11", 4.5), ("176601", 0.5)]
    stored = as_json(query(url, "SELECT config FROM catalog")[0][0])
    assert stored == config.model_dump(mode="json")


def test_a_second_load_leaves_the_same_rows(tmp_path: Path, databases, backend: str) -> None:
    url = database(databases, backend)
    folder = write(tmp_path, users_csv=USERS, items_csv=ITEMS, events_csv=EVENTS)
    assert load(url, shop(), folder) == {"users": 2, "items": 2, "interactions": 3}
    first = snapshot(url)
    assert load(url, shop(), folder) == {"users": 2, "items": 2, "interactions": 3}
    assert snapshot(url) == first
    # New attributes replace the old; events already there stay as they were.
    write(tmp_path, users_csv="uid,plan\nu1,plus\nu2,pro\n")
    load(url, shop(), folder)
    assert attributes(url, "users")["u1"] == {"plan": "plus"}
    assert snapshot(url)["interactions"] == first["interactions"]
    # Reloads take no ids: the next new event gets the next one.
    write(tmp_path, events_csv=EVENTS + "u2,i2,2021-01-01T00:00:00\n")
    load(url, shop(), folder)
    newest = query(url, "SELECT id FROM interactions WHERE user_id = 'u2' AND item_id = 'i2'")
    assert newest == [(max(row[0] for row in first["interactions"]) + 1,)]


def test_interaction_ids_follow_time_not_the_file(tmp_path: Path, databases, backend: str) -> None:
    url = database(databases, backend)
    load(url, shop(), write(tmp_path, users_csv=USERS, items_csv=ITEMS, events_csv=EVENTS))
    in_id_order = query(url, "SELECT user_id, item_id FROM interactions ORDER BY id")
    assert in_id_order == [("u2", "i1"), ("u1", "i2"), ("u1", "i1")]


def _poison(url: str, backend: str) -> None:
    """A real trigger that fails the insert of one interaction: a failure after users
    and items were already written in the same transaction."""
    if backend == "sqlite":
        statements = [
            "CREATE TRIGGER poison BEFORE INSERT ON interactions WHEN NEW.item_id = 'i2' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        ]
    else:
        statements = [
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.item_id = 'i2' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON interactions "
            "FOR EACH ROW EXECUTE FUNCTION poison()",
        ]
    asyncio.run(_run(url, statements))


async def _run(url: str, statements: list[str]) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def test_a_failure_while_writing_leaves_nothing_behind(
    tmp_path: Path, databases, backend: str
) -> None:
    import asyncpg

    url = database(databases, backend)
    folder = write(tmp_path, users_csv=USERS, items_csv=ITEMS, events_csv=EVENTS)
    _poison(url, backend)
    with pytest.raises((DBAPIError, asyncpg.PostgresError), match="poisoned row"):
        load(url, shop(), folder)
    empty = {"catalog": [], "users": [], "items": [], "interactions": []}
    assert snapshot(url) == empty
    on = "" if backend == "sqlite" else " ON interactions"
    asyncio.run(_run(url, [f"DROP TRIGGER poison{on}"]))
    assert load(url, shop(), folder)["interactions"] == 3


def test_unknown_references_are_named_and_nothing_is_written(
    tmp_path: Path, databases, backend: str
) -> None:
    url = database(databases, backend)
    folder = write(tmp_path, users_csv=USERS, items_csv=ITEMS)
    events_path = folder / "events.csv"

    async def go() -> None:
        # One engine throughout: a failed load must leave its connection fit for the next.
        engine = create_engine(DatabaseSettings(url=url, pool_size=1))
        try:
            for extra, message in [
                ("u1,i9,2020-01-05\n", ":5: column 'sku': 'i9' is not in items.csv"),
                ("u3,i1,2020-01-05\n", ":5: column 'uid': 'u3' is not in users.csv"),
            ]:
                write(tmp_path, events_csv=EVENTS + extra)
                with pytest.raises(CatalogFileError, match=f"{events_path}{message}"):
                    await load_catalog(engine, shop(), folder)
            write(tmp_path, events_csv=EVENTS)
            await load_catalog(engine, shop(), folder)
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert len(snapshot(url)["interactions"]) == 3


def test_a_repeated_id_is_named(tmp_path: Path, databases, backend: str) -> None:
    url = database(databases, backend)
    folder = write(tmp_path, users_csv=USERS, items_csv=ITEMS + "i1,Again\n", events_csv=EVENTS)
    repeated = r"items\.csv:4: column 'sku': id 'i1' is already on line 2"
    with pytest.raises(CatalogFileError, match=repeated):
        load(url, shop(), folder)


def test_a_second_catalog_is_refused_before_anything_is_written(
    tmp_path: Path, databases, backend: str
) -> None:
    url = database(databases, backend)
    folder = write(tmp_path, users_csv=USERS, items_csv=ITEMS, events_csv=EVENTS)
    load(url, shop(), folder)
    before = snapshot(url)
    write(tmp_path, items_csv=ITEMS + "i3,New\n")
    with pytest.raises(LoadError, match="holds catalog 'shop': one catalog per database"):
        load(url, shop(name="other"), folder)
    assert snapshot(url) == before


def _same_second_events(users: int, items: int, descending: bool) -> str:
    """Every user's events in one second, the file sorted by item id within each user
    (as MovieLens latest-small's ratings.csv is)."""
    order = range(items, 0, -1) if descending else range(1, items + 1)
    lines = [f"u{u:02d},i{i},2020-01-01T00:00:00" for u in range(users) for i in order]
    return "uid,sku,at\n" + "\n".join(lines) + "\n"


def _order_per_user(url: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for user, item in query(url, "SELECT user_id, item_id FROM interactions ORDER BY id"):
        found.setdefault(user, []).append(item)
    return found


def test_hashed_ties_do_not_follow_the_file_order(tmp_path: Path, databases, backend: str) -> None:
    items = "sku,title\n" + "".join(f"i{i},t\n" for i in range(1, 6))
    orders = []
    for descending in (False, True):
        url = database(databases, backend)
        events = _same_second_events(30, 5, descending)
        folder = write(tmp_path, items_csv=items, events_csv=events)
        load(url, shop(users=False), folder)
        orders.append(_order_per_user(url))
    assert orders[0] == orders[1]  # the file's order decided nothing
    last_is_highest = sum(order[-1] == "i5" for order in orders[0].values())
    assert last_is_highest < 15  # about 1 in 5 by chance; 30 of 30 if the file decided


def test_file_ties_keep_the_file_order(tmp_path: Path, databases, backend: str) -> None:
    items = "sku,title\n" + "".join(f"i{i},t\n" for i in range(1, 4))
    url = database(databases, backend)
    folder = write(tmp_path, items_csv=items, events_csv=_same_second_events(2, 3, True))
    load(url, shop(users=False, same_time_order="file"), folder)
    assert _order_per_user(url) == {"u00": ["i3", "i2", "i1"], "u01": ["i3", "i2", "i1"]}


@pytest.mark.parametrize("with_users", [True, False])
def test_synthetic_catalogs_load(tmp_path: Path, databases, backend: str, with_users: bool) -> None:
    url = database(databases, backend)
    config = write_synthetic(
        tmp_path, users=60, items=40, interactions=900, with_users=with_users, seed=3
    )
    counts = load(url, config, tmp_path)
    assert counts["items"] == 40 and counts["interactions"] == 900  # one row per line
    assert counts["users"] == 60 if with_users else 0 < counts["users"] <= 60
    some_user = next(iter(attributes(url, "users").values()))
    assert set(some_user) == ({"country", "plan", "birth_year"} if with_users else set())
    kinds = {kind for (kind,) in query(url, "SELECT DISTINCT event_type FROM interactions")}
    assert kinds == {"view", "click", "purchase"}


def test_interactions_are_all_visible_after_a_load(tmp_path: Path, databases, backend) -> None:
    """PostgreSQL: the load ends with VACUUM, so the profile read's index-only scan needs
    no table visits (and the planner takes it) without waiting for autovacuum, which may
    be off."""
    if backend != "postgres":
        pytest.skip("a visibility map is PostgreSQL's")
    url = database(databases, backend)
    load(url, shop(), write(tmp_path, users_csv=USERS, items_csv=ITEMS, events_csv=EVENTS))
    pages, visible = query(
        url, "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'interactions'"
    )[0]
    assert pages > 0 and visible == pages
