"""The async engine: one per process, created in the lifespan or by a CLI command."""

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        _ensure_sqlite_folder(url.database)
        engine = create_async_engine(url, connect_args={"timeout": settings.timeout_seconds})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        pool_timeout=settings.timeout_seconds,
        # timeout bounds connecting, command_timeout each statement: a sick database
        # costs a request seconds, not forever.
        connect_args={
            "timeout": settings.timeout_seconds,
            "command_timeout": settings.timeout_seconds,
        },
    )


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
