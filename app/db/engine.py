"""The async engine: one per process, created in the lifespan or by a CLI command."""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import DatabaseSettings

T = TypeVar("T")


def create_engine(settings: DatabaseSettings, *, pooled: bool = True) -> AsyncEngine:
    """`pooled` False: a fresh connection per use (for a health probe)."""
    url = make_url(settings.url)
    # Attributes are JSON: orjson reads a profile's in about a microsecond.
    options: dict = {"json_serializer": json_text, "json_deserializer": orjson.loads}
    if not pooled:
        options["poolclass"] = NullPool
    if url.get_backend_name() == "sqlite":
        _ensure_sqlite_folder(url.database)
        connect = {"timeout": settings.timeout_seconds}
        engine = create_async_engine(url, connect_args=connect, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if not pooled:
        return create_async_engine(url, connect_args=_pg_limits(settings), **options)
    # No pre-ping: it costs every checkout a round trip. Readers on the request path
    # retry once on a connection found dead instead (`read_retrying`).
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        pool_timeout=settings.timeout_seconds,
        connect_args=_pg_limits(settings),
        **options,
    )


def json_text(value: object) -> str:
    """JSON as text (what SQLAlchemy and asyncpg take for json/jsonb columns), by orjson."""
    return orjson.dumps(value).decode()


def _pg_limits(settings: DatabaseSettings) -> dict:
    # timeout bounds connecting, command_timeout each statement: a sick database costs a
    # job seconds, not forever (requests have their own, shorter deadline: app.db.guard).
    return {"timeout": settings.timeout_seconds, "command_timeout": settings.timeout_seconds}


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, without BEGIN/ROLLBACK around each statement: for single reads."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def read_retrying(engine: AsyncEngine, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`read` on a pooled connection; once more on a fresh one if that connection turns out
    dead (the database restarted since it was opened): optimistic disconnect handling."""
    try:
        async with engine.connect() as conn:
            return await read(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with engine.connect() as conn:
        return await read(conn)


def safe_url(raw: str) -> str:
    """The URL with its password masked, for logs and error messages."""
    return make_url(raw).render_as_string(hide_password=True)


def _ensure_sqlite_folder(database: str | None) -> None:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a load or training job writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
