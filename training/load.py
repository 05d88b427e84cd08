"""Load a catalog's files into the database: streamed through staging tables, one transaction.

The files are read a batch at a time (training/catalog_files.py) into TEMP staging tables
(COPY on PostgreSQL, batched inserts on SQLite), checked there (repeated ids, events naming
a user or item their file lacks), then written with one INSERT ... SELECT per table: users
and items upserted by id, interactions inserted when their natural key (user, item, event
type, time) is new. Memory stays flat whatever the catalog's size: the database holds the
rows and does the sorting.

All or nothing (one transaction), and idempotent: a second run leaves the same rows.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import DateTime, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.catalog import CatalogConfig
from app.db.tables import catalog
from training.catalog_files import (
    CatalogFileError,
    Entity,
    Event,
    Part,
    check_files,
    file_of,
    read_interactions,
    read_items,
    read_users,
)

# (step, rows done in it so far). Steps: "users", "items", "interactions" while their
# files are read (rows read); "writing users", "writing items", "writing interactions"
# (0 when the statement starts, the rows it wrote when it ends); "analyze"; "vacuum"
# (PostgreSQL).
Progress = Callable[[str, int], None]
# The engine's statement timeout is made for requests; one load statement may sort and
# write tens of millions of rows.
STATEMENT_SECONDS = 6 * 3600.0
COLUMNS = {
    "users": ("line", "id", "attributes"),
    "items": ("line", "id", "attributes"),
    "interactions": (
        "line", "user_id", "item_id", "rating", "event_type", "occurred_at", "tie"
    ),
}  # fmt: skip
EVENT_TYPE_LENGTH = 32  # interactions.event_type's column


class LoadError(ValueError):
    """The database cannot take this catalog; the message says why."""


async def load_catalog(
    engine: AsyncEngine,
    config: CatalogConfig,
    data_dir: Path,
    *,
    on_progress: Progress | None = None,
) -> dict[str, int]:
    """Read, check and store the catalog; returns the table row counts after the load."""
    report = on_progress or (lambda _step, _rows: None)
    _check_config(config)
    check_files(config, data_dir)  # a missing file or column fails before any writing
    async with engine.begin() as conn:
        # The first statement through SQLAlchemy also opens the transaction that the
        # driver-level statements below run in.
        await _refuse_another_catalog(conn, config)
        db = await _backend(conn)
        await db.create_staging()
        await _stage_all(db, config, data_dir, report)
        await _check_staged(db, config, data_dir)
        await _write(db, config, report)
        await db.drop_staging()
        await _save_config(conn, config)
        report("analyze", 0)
        # Fresh planner statistics: the request path's plans depend on them.
        await db.execute("ANALYZE")
        counts = {t: await _count(db, t) for t in ("users", "items", "interactions")}
    if engine.dialect.name == "postgresql":
        report("vacuum", 0)
        await _vacuum(engine)
    return counts


async def _vacuum(engine: AsyncEngine) -> None:
    """Mark the freshly written interactions all-visible. The profile read scans its
    covering index backward, index-only; rows not yet marked (autovacuum off, or not
    round yet: a load is one burst) send each lookup to the table, so the planner takes a
    bitmap scan and a sort instead (pgbench, one statement of 19 MovieLens users: 1.84 ms
    before, 1.14 ms after). VACUUM runs outside a transaction, so after the load's."""
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = await auto.get_raw_connection()
        await _Postgres(raw.driver_connection).execute("VACUUM interactions")


async def _count(db: "_Backend", table: str) -> int:
    found = await db.first(f"SELECT count(*) FROM {table}")
    return int(found[0]) if found else 0


def _check_config(config: CatalogConfig) -> None:
    long = [k for k in config.interactions.event_types if len(k) > EVENT_TYPE_LENGTH]
    if long:
        raise LoadError(f"event type {long[0]!r} is longer than {EVENT_TYPE_LENGTH} characters")


async def _refuse_another_catalog(conn: AsyncConnection, config: CatalogConfig) -> None:
    names = (await conn.execute(select(catalog.c.name))).scalars().all()
    other = next((name for name in names if name != config.name), None)
    if other is not None:
        raise LoadError(
            f"the database holds catalog {other!r}: one catalog per database, so load "
            f"{config.name!r} into a database of its own"
        )


async def _save_config(conn: AsyncConnection, config: CatalogConfig) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    row = {"config": config.model_dump(mode="json"), "updated_at": datetime.now(UTC)}
    stmt = insert(catalog).values(name=config.name, **row)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=row))


# Staging: the files' rows as they were read, each with its line for error messages.


async def _stage_all(db: "_Backend", config: CatalogConfig, folder: Path, report: Progress) -> None:
    if config.users:
        await _stage(db, "users", read_users(config, folder), _entity_row, report)
    await _stage(db, "items", read_items(config, folder), _entity_row, report)
    tie = _hashed_tie if config.same_time_order == "hashed" else _file_tie
    events = read_interactions(config, folder)
    await _stage(db, "interactions", events, lambda e: (*e, tie(e)), report)


async def _stage(
    db: "_Backend", part: Part, batches: Iterator[list], to_row: Callable, report: Progress
) -> None:
    done = 0
    async with contextlib.aclosing(_read_ahead(batches, to_row)) as staged:
        async for rows in staged:
            await db.copy(part, rows)
            done += len(rows)
            report(part, done)


async def _read_ahead(batches: Iterator[list], to_row: Callable) -> AsyncIterator[list]:
    """Each batch's staging rows, the next batch read in a worker thread while the
    database takes the current one: parsing and writing overlap, and the event loop is
    never blocked."""

    def next_rows() -> list | None:
        batch = next(batches, None)
        return None if batch is None else [to_row(record) for record in batch]

    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next_rows)
    try:
        while (rows := await pending) is not None:
            pending = loop.run_in_executor(None, next_rows)
            yield rows
    finally:
        with contextlib.suppress(Exception):  # the thread must be done before closing
            await pending
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # the reader's file is closed now, not when garbage is collected


def _entity_row(entity: Entity) -> tuple:
    return entity.line, entity.id, orjson.dumps(entity.attributes).decode()


def _hashed_tie(event: Event) -> int:
    """Same-second events in an order no file decides: a stable hash of what they are."""
    key = f"{event.user_id}\x1f{event.item_id}\x1f{event.event_type}".encode()
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "big", signed=True)


def _file_tie(event: Event) -> int:
    return event.line


async def _check_staged(db: "_Backend", config: CatalogConfig, folder: Path) -> None:
    """Each id once per file, and every event's user and item in their files: named by
    file and line, where a foreign key would only say that something failed."""
    parts: list[Part] = ["users", "items"] if config.users else ["items"]
    for part in parts:
        await _check_repeated_ids(db, config, folder, part)
        await db.index_ids(part)  # for the reference checks below
    spec = config.interactions
    for part, column, name in [("items", "item_id", spec.item), ("users", "user_id", spec.user)]:
        if part not in parts:
            continue  # no users file: the events name the users
        missing = await db.first(
            f"SELECT s.line, s.{column} FROM {db.table_of('interactions')} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {db.table_of(part)} p WHERE p.id = s.{column}) "
            "ORDER BY s.line LIMIT 1"
        )
        if missing:
            raise CatalogFileError(
                f"{file_of(config, folder, 'interactions')}:{missing[0]}: column {name!r}: "
                f"{missing[1]!r} is not in {file_of(config, folder, part).name}"
            )


async def _check_repeated_ids(
    db: "_Backend", config: CatalogConfig, folder: Path, part: Part
) -> None:
    repeated = await db.first(
        f"SELECT id, min(line), max(line) FROM {db.table_of(part)} GROUP BY id "
        "HAVING count(*) > 1 ORDER BY 2 LIMIT 1"
    )
    if repeated:
        ident, first, last = repeated
        raise CatalogFileError(
            f"{file_of(config, folder, part)}:{last}: column {getattr(config, part).id!r}: "
            f"id {ident!r} is already on line {first}"
        )


async def _write(db: "_Backend", config: CatalogConfig, report: Progress) -> None:
    for part in ["users", "items"] if config.users else ["items"]:
        report(f"writing {part}", 0)
        done = await db.execute(
            f"INSERT INTO {part} (id, attributes) SELECT id, attributes{db.json_cast} "
            f"FROM {db.table_of(part)} WHERE true ON CONFLICT (id) DO UPDATE "
            f"SET attributes = excluded.attributes "
            f"WHERE {part}.attributes {db.distinct} excluded.attributes"
        )
        report(f"writing {part}", done)
    if not config.users:  # no user file: the events' users, with nothing known of them
        report("writing users", 0)
        done = await db.execute(
            f"INSERT INTO users (id, attributes) SELECT DISTINCT user_id, '{{}}'{db.json_cast} "
            f"FROM {db.table_of('interactions')} WHERE true ON CONFLICT (id) DO NOTHING"
        )
        report("writing users", done)
    report("writing interactions", 0)
    # In time order, so the autoincrement id (serving's tie-break) follows time; `tie`
    # orders a user's same-second events (see CatalogConfig.same_time_order). Events
    # already stored are left out before the insert, not only by ON CONFLICT: PostgreSQL
    # takes an id for every row it tries, and reloads would use the ids up.
    done = await db.execute(
        "INSERT INTO interactions (user_id, item_id, rating, event_type, occurred_at) "
        "SELECT s.user_id, s.item_id, s.rating, s.event_type, s.occurred_at "
        f"FROM {db.table_of('interactions')} s WHERE NOT EXISTS (SELECT 1 FROM interactions i "
        "WHERE i.user_id = s.user_id AND i.item_id = s.item_id "
        "AND i.event_type = s.event_type AND i.occurred_at = s.occurred_at) "
        "ORDER BY s.occurred_at, s.tie, s.line "
        "ON CONFLICT (user_id, item_id, event_type, occurred_at) DO NOTHING"
    )
    report("writing interactions", done)


# Backends: the same SQL, each database's way of staging and running it.


class _Backend(Protocol):
    json_cast: str
    distinct: str  # "is distinct from", which the two spell differently

    def table_of(self, part: str) -> str: ...
    async def index_ids(self, part: str) -> None: ...
    async def create_staging(self) -> None: ...
    async def drop_staging(self) -> None: ...
    async def copy(self, part: str, rows: list[tuple]) -> None: ...
    async def execute(self, sql: str) -> int: ...
    async def first(self, sql: str) -> tuple | None: ...


async def _backend(conn: AsyncConnection) -> _Backend:
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        return _Postgres(raw.driver_connection)
    return _Sqlite(conn)


def _staging_ddl(time_type: str, suffix: str) -> list[str]:
    entity = "(line BIGINT NOT NULL, id TEXT NOT NULL, attributes TEXT NOT NULL)"
    events = (
        "(line BIGINT NOT NULL, user_id TEXT NOT NULL, item_id TEXT NOT NULL, rating FLOAT, "
        f"event_type TEXT NOT NULL, occurred_at {time_type} NOT NULL, tie BIGINT NOT NULL)"
    )
    return [
        f"CREATE TEMP TABLE stage_users {entity}{suffix}",
        f"CREATE TEMP TABLE stage_items {entity}{suffix}",
        f"CREATE TEMP TABLE stage_interactions {events}{suffix}",
    ]


class _Postgres:
    """asyncpg under SQLAlchemy's transaction: COPY, and no per-request statement timeout."""

    json_cast, distinct = "::jsonb", "IS DISTINCT FROM"

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def table_of(self, part: str) -> str:
        return f"pg_temp.stage_{part}"

    async def index_ids(self, part: str) -> None:
        await self.execute(f"CREATE INDEX ON pg_temp.stage_{part} (id)")

    async def create_staging(self) -> None:
        for ddl in _staging_ddl("TIMESTAMPTZ", " ON COMMIT DROP"):
            await self.execute(ddl)

    async def drop_staging(self) -> None:
        await self.execute(f"DROP TABLE {', '.join(self.table_of(p) for p in COLUMNS)}")

    async def copy(self, part: str, rows: list[tuple]) -> None:
        await self.driver.copy_records_to_table(
            f"stage_{part}",
            records=rows,
            columns=COLUMNS[part],
            schema_name="pg_temp",
            timeout=STATEMENT_SECONDS,
        )

    async def execute(self, sql: str) -> int:
        status = await self.driver.execute(sql, timeout=STATEMENT_SECONDS)
        count = status.rsplit(" ", 1)[-1]  # "INSERT 0 1682"
        return int(count) if count.isdigit() else 0

    async def first(self, sql: str) -> tuple | None:
        row = await self.driver.fetchrow(sql, timeout=STATEMENT_SECONDS)
        return tuple(row) if row is not None else None


class _Sqlite:
    """Batched inserts; times stored as SQLAlchemy writes them, so reads see no difference."""

    json_cast, distinct = "", "IS NOT"

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        impl = DateTime(timezone=True).dialect_impl(conn.dialect)
        self.time = impl.bind_processor(conn.dialect)

    def table_of(self, part: str) -> str:
        return f"temp.stage_{part}"

    async def index_ids(self, part: str) -> None:
        await self.execute(f"CREATE INDEX temp.stage_{part}_id ON stage_{part} (id)")

    async def create_staging(self) -> None:
        # The driver opens its transaction at the first INSERT, so these CREATEs are
        # not rolled back: a failed load on this pooled connection may have left them.
        await self.drop_staging()
        for ddl in _staging_ddl("TEXT", ""):
            await self.execute(ddl)

    async def drop_staging(self) -> None:
        for part in COLUMNS:
            await self.execute(f"DROP TABLE IF EXISTS temp.stage_{part}")

    async def copy(self, part: str, rows: list[tuple]) -> None:
        if part == "interactions":
            rows = [(*r[:5], self.time(r[5]), r[6]) for r in rows]
        columns = COLUMNS[part]
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO temp.stage_{part} ({', '.join(columns)}) VALUES ({marks})"
        await self.conn.exec_driver_sql(sql, rows)

    async def execute(self, sql: str) -> int:
        return (await self.conn.exec_driver_sql(sql)).rowcount

    async def first(self, sql: str) -> tuple | None:
        row = (await self.conn.exec_driver_sql(sql)).first()
        return tuple(row) if row is not None else None
