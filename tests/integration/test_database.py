"""Migrations and MovieLens 100K loaded through its catalog, against real SQLite and
PostgreSQL databases (the loader's own cases, on small catalogs: test_load.py)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine
from app.db.queries import UserProfile, fetch_profiles
from app.db.tables import interactions, items, users
from app.settings import DatabaseSettings
from tests.conftest import BACKENDS, backend_available, load_into
from training.migrate import downgrade, upgrade


def _tables(url: str) -> set[str]:
    async def go() -> set[str]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _snapshot(url: str) -> dict[str, list]:
    async def go() -> dict[str, list]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                out = {}
                for table in (users, items, interactions):
                    rows = await conn.execute(select(table).order_by(*table.primary_key))
                    out[table.name] = [tuple(r) for r in rows]
                return out
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_upgrade_and_downgrade(databases, backend: str) -> None:
    backend_available(backend)
    url = databases.empty(backend)
    upgrade(url)
    assert {"users", "items", "interactions", "alembic_version"} <= _tables(url)
    downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    upgrade(url)
    assert {"users", "items", "interactions"} <= _tables(url)


def _attributes(url: str, table) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    async def go() -> dict[str, dict]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(table.c.id, table.c.attributes))
                return {ident: attributes for ident, attributes in rows}
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _movielens_as_before(folder) -> tuple[dict[str, dict], dict[str, dict]]:  # type: ignore[no-untyped-def]
    """Users and items as the loader before the catalog contract stored them (columns
    then, attributes now): an independent reading of u.user and u.item. One difference:
    values are stripped now (three titles ended in a space)."""
    from training.movielens import GENRES

    people = {}
    for line in (folder / "u.user").read_text().splitlines():
        uid, age, gender, occupation, zip_code = line.split("|")
        people[uid] = {"age": int(age), "gender": gender, "occupation": occupation,
                       "zip_code": zip_code}  # fmt: skip
    movies = {}
    for line in (folder / "u.item").read_bytes().decode("latin-1").split("\n"):
        if line:
            f = line.split("|")
            genres = [g for g, flag in zip(GENRES, f[5:], strict=True) if flag == "1"]
            movies[f[0]] = {"title": f[1].strip(), "genres": "|".join(genres),
                            "release_date": f[2] or None, "url": f[4] or None}  # fmt: skip
    return people, movies


@pytest.mark.movielens
@pytest.mark.parametrize("backend", BACKENDS)
def test_load_is_complete_and_idempotent(databases, movielens, backend: str) -> None:
    backend_available(backend)
    url = databases.migrated(backend)
    counts = load_into(url, movielens)
    assert counts == {"users": 943, "items": 1682, "interactions": 100000}
    first = _snapshot(url)
    assert load_into(url, movielens) == counts
    assert _snapshot(url) == first  # same rows, same ids
    before_users, before_items = _movielens_as_before(movielens.folder)
    assert _attributes(url, users) == before_users
    assert _attributes(url, items) == before_items
    assert before_users["1"] == {
        "age": 24, "gender": "M", "occupation": "technician", "zip_code": "85711"
    }  # fmt: skip


@pytest.mark.movielens
def test_interaction_order_matches_serving_order(loaded_database: str) -> None:
    """Insertion ids follow time, the tie-break both training and serving rely on."""

    async def go() -> int:
        engine = create_engine(DatabaseSettings(url=loaded_database))
        try:
            async with engine.connect() as conn:
                later = interactions.alias("later")
                stmt = (
                    select(func.count())
                    .select_from(interactions.join(later, later.c.id == interactions.c.id + 1))
                    .where(later.c.occurred_at < interactions.c.occurred_at)
                )
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == 0


@pytest.mark.movielens
def test_profile_reads_each_history_items_rating(loaded_database: str, movielens_dir) -> None:
    """The app's one-query profile pairs every history item with its rating, newest first
    (same-second events in reverse file order, the later line being the newer event),
    exactly as u.data has them."""
    events = []
    for line_number, line in enumerate((movielens_dir / "u.data").read_text().splitlines()):
        user, item, rating, ts = line.split("\t")
        if user == "13":
            events.append((int(ts), line_number, item, float(rating)))
    newest_first = sorted(events, reverse=True)

    async def go() -> UserProfile | None:
        engine = create_engine(DatabaseSettings(url=loaded_database))
        try:
            async with engine.connect() as conn:
                return (await fetch_profiles(conn, ["13"], 5000)).get("13")
        finally:
            await engine.dispose()

    profile = asyncio.run(go())
    assert profile is not None and len(profile.history) == len(events) > 600
    assert list(zip(profile.history, profile.history_ratings, strict=True)) == [
        (item, rating) for _, _, item, rating in newest_first
    ]


def _indexes(url: str) -> dict[str, list[str]]:
    async def go() -> dict[str, list[str]]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                found = await conn.run_sync(lambda c: inspect(c).get_indexes("interactions"))
                return {index["name"]: index["column_names"] for index in found}
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_recent_events_index_covers_the_profile_read(databases, backend: str) -> None:
    """Migration 0002 swaps the (user, time, id) index for one that also carries the item
    and the rating; its downgrade restores the old one."""
    backend_available(backend)
    url = databases.migrated(backend)
    covering = ["user_id", "occurred_at", "id", "item_id", "rating"]
    assert covering in _indexes(url).values()
    assert ["user_id", "occurred_at", "id"] not in _indexes(url).values()
    downgrade(url, "0001")
    assert ["user_id", "occurred_at", "id"] in _indexes(url).values()
    assert covering not in _indexes(url).values()


def _read(url: str, user_ids: list[str], limit: int) -> dict[str, UserProfile]:
    async def go() -> dict[str, UserProfile]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.connect() as conn:
                return await fetch_profiles(conn, user_ids, limit)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.movielens
def test_one_statement_reads_a_batch_like_single_reads(loaded_database: str) -> None:
    """A batch (duplicates and unknown ids included) gives each known user exactly what
    reading that user alone gives, capped at `limit` newest events."""
    batch = ["13", "1", "no-such-user", "13", "405", "2"]
    together = _read(loaded_database, batch, 30)
    assert sorted(together) == ["1", "13", "2", "405"]
    for user_id, profile in together.items():
        assert profile == _read(loaded_database, [user_id], 30)[user_id]
        assert len(profile.history) == len(profile.history_ratings) == 30
    assert together["13"].history == _read(loaded_database, ["13"], 5000)["13"].history[:30]
    assert _read(loaded_database, [], 30) == {}


async def _kill_backend(url: str, engine) -> None:  # type: ignore[no-untyped-def]
    """Terminate the server backend behind `engine`'s (single) pooled connection."""
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = create_engine(DatabaseSettings(url=url))
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        await admin.dispose()


@pytest.mark.movielens
def test_request_reads_survive_a_connection_the_server_closed(loaded_database: str) -> None:
    """No pre-ping on the request path: a pooled connection the server has closed (a
    restart, an idle timeout) costs one retry on a fresh connection, not a failed read.
    The server is untouched: only this pool's own backend is terminated."""
    from sqlalchemy.exc import DBAPIError

    from app.db.engine import autocommit, read_retrying

    if not loaded_database.startswith("postgresql"):
        pytest.skip("backend connections to terminate exist on PostgreSQL only")

    def read(conn):  # type: ignore[no-untyped-def]
        return fetch_profiles(conn, ["13"], 5)

    async def go() -> None:
        engine = autocommit(create_engine(DatabaseSettings(url=loaded_database, pool_size=1)))
        try:
            await _kill_backend(loaded_database, engine)
            with pytest.raises(DBAPIError):  # without the retry the read fails
                async with engine.connect() as conn:
                    await read(conn)
            await _kill_backend(loaded_database, engine)
            assert len((await read_retrying(engine, read))["13"].history) == 5
        finally:
            await engine.dispose()

    asyncio.run(go())


@pytest.mark.movielens
def test_the_request_paths_reader_reads_what_the_engine_reads(loaded_database: str) -> None:
    """The profile reader the app picks for the backend (PostgreSQL: asyncpg's own pool,
    app.db.profiles) gives exactly `fetch_profiles`' profiles through SQLAlchemy: a batch
    with duplicates and unknown ids, a short and a long limit, and an empty batch."""
    from app.db.profiles import AsyncpgProfiles, profile_reader

    batch = ["13", "1", "no-such-user", "13", "405", "2"]

    async def go() -> None:
        settings = DatabaseSettings(url=loaded_database, pool_size=2)
        engine = create_engine(settings)
        reader = profile_reader(settings, engine)
        postgres = loaded_database.startswith("postgresql")
        assert isinstance(reader, AsyncpgProfiles) == postgres
        try:
            # The first reads arrive together (the app's pool warm-up): one pool serves them.
            first = await asyncio.gather(*(reader.read(batch, 5) for _ in range(4)))
            assert all(answer == first[0] for answer in first)
            for limit in (5, 30, 5000):
                async with engine.connect() as conn:
                    expected = await fetch_profiles(conn, batch, limit)
                assert sorted(expected) == ["1", "13", "2", "405"]
                assert await reader.read(batch, limit) == expected
            assert await reader.read([], 30) == {}
        finally:
            await reader.close()
            await engine.dispose()

    asyncio.run(go())


@pytest.mark.movielens
def test_asyncpg_reader_survives_a_connection_the_server_closed(loaded_database: str) -> None:
    """The asyncpg reader's only connection is terminated by the server between two reads
    (a restart, an idle timeout): the next read still answers, on a new connection."""
    if not loaded_database.startswith("postgresql"):
        pytest.skip("backend connections to terminate exist on PostgreSQL only")

    async def go() -> None:
        async with _reader_and_admin(loaded_database) as (reader, admin):
            for _ in range(10):  # the termination is seen at different moments
                assert len((await reader.read(["13"], 5))["13"].history) == 5
                pool = reader._pool
                assert pool is not None
                pid = await pool.fetchval("SELECT pg_backend_pid()")
                async with admin.connect() as conn:
                    await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                assert len((await reader.read(["13"], 5))["13"].history) == 5
                assert await pool.fetchval("SELECT pg_backend_pid()") != pid

    asyncio.run(go())


@pytest.mark.movielens
def test_asyncpg_reader_returns_its_connection_without_a_reset_round_trip(
    loaded_database: str,
) -> None:
    """A read is one statement: the pool hands the connection back as it is, so the
    server's last statement on it is the read itself, not asyncpg's default reset query
    (a second round trip on every batch)."""
    from app.db.profiles import _SQL

    if not loaded_database.startswith("postgresql"):
        pytest.skip("the asyncpg reader reads PostgreSQL only")

    async def go() -> None:
        async with _reader_and_admin(loaded_database) as (reader, admin):
            assert "13" in await reader.read(["13"], 5)
            assert reader._pool is not None
            pid = await reader._pool.fetchval("SELECT pg_backend_pid()")
            assert len((await reader.read(["13", "14"], 5))["14"].history) == 5
            async with admin.connect() as conn:
                last = await conn.scalar(
                    text("SELECT query FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
                )
            assert last.strip() == _SQL.strip()

    asyncio.run(go())


@pytest.mark.movielens
def test_asyncpg_reader_reads_with_sqlalchemys_statement_cache_argument(
    loaded_database: str,
) -> None:
    """`?prepared_statement_cache_size=0` (SQLAlchemy's documented asyncpg argument, as
    set for pgbouncer) serves the engine; the reader reads with it too, no statement cached,
    instead of asyncpg refusing an argument it does not know."""
    if not loaded_database.startswith("postgresql"):
        pytest.skip("the asyncpg reader reads PostgreSQL only")

    async def go() -> None:
        url = f"{loaded_database}?prepared_statement_cache_size=0"
        async with _reader_and_admin(url) as (reader, admin):
            assert len((await reader.read(["13"], 5))["13"].history) == 5
            assert reader._pool is not None
            async with reader._pool.acquire() as conn:
                assert conn._stmt_cache.get_max_size() == 0
            async with admin.connect() as conn:  # the engine takes the same URL
                assert await conn.scalar(text("SELECT 1")) == 1

    asyncio.run(go())


@contextlib.asynccontextmanager
async def _reader_and_admin(url: str) -> AsyncIterator[tuple[Any, AsyncEngine]]:
    """The asyncpg reader on one connection, and an engine to look at the server with."""
    from app.db.profiles import AsyncpgProfiles

    reader = AsyncpgProfiles(DatabaseSettings(url=url, pool_size=1))
    admin = create_engine(DatabaseSettings(url=url))
    try:
        yield reader, admin
    finally:
        await reader.close()
        await admin.dispose()


@pytest.mark.movielens
def test_asyncpg_reader_keeps_the_urls_connect_arguments(loaded_database: str) -> None:
    """`?ssl=require` reaches asyncpg, as through the engine: this machine's server has no
    SSL, so the read fails (a database error: requests fall back) instead of connecting
    in the clear."""
    from app.db.profiles import AsyncpgProfiles
    from app.errors import DATABASE_ERRORS

    if not loaded_database.startswith("postgresql"):
        pytest.skip("PostgreSQL's connect arguments")

    async def go() -> None:
        plain = AsyncpgProfiles(DatabaseSettings(url=loaded_database, pool_size=1))
        secure = AsyncpgProfiles(DatabaseSettings(url=f"{loaded_database}?ssl=require"))
        try:
            assert "13" in await plain.read(["13"], 5)
            with pytest.raises(DATABASE_ERRORS):
                await secure.read(["13"], 5)
        finally:
            await plain.close()
            await secure.close()

    asyncio.run(go())


@pytest.mark.movielens
def test_the_training_read_gives_the_same_catalog_in_small_chunks(
    loaded_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users and items are fetched in chunks (each its own statement, so the
    per-statement timeout bounds a chunk, not a catalog of any size), as events were:
    97 rows a chunk, so neither table arrives whole, gives the catalog (fingerprint
    included) that 100,000-row chunks give."""
    from training import dataset

    def read() -> dataset.Catalog:
        async def go() -> dataset.Catalog:
            engine = create_engine(DatabaseSettings(url=loaded_database))
            try:
                return await dataset.read_catalog(engine)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    whole = read()
    monkeypatch.setattr(dataset, "ROWS_CHUNK", 97)
    chunked = read()
    assert len(whole.user_ids) == 943 and len(whole.item_ids) == 1682 and whole.events == 100_000
    assert chunked.fingerprint == whole.fingerprint
    assert chunked.user_ids.tolist() == whole.user_ids.tolist()
    assert chunked.item_ids.tolist() == whole.item_ids.tolist()
    for name in ("event_items", "event_ratings", "starts"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name), equal_nan=True)
    for table in ("users", "items"):
        for field, column in getattr(whole, table).items():
            numeric = column.dtype.kind == "f"
            assert np.array_equal(getattr(chunked, table)[field], column, equal_nan=numeric)
