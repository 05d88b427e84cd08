"""The request path's profile reader: one statement per micro-batch of users.

On PostgreSQL the read goes through asyncpg's own connection pool instead of SQLAlchemy's
engine: the same statement (app.db.queries, compiled once), without the engine's work
around each execution. Measured alone on a batch of 17 MovieLens users: 0.64 ms of the
event loop's CPU and 1.34 ms per read through the engine, 0.23 ms and 0.97 ms through
asyncpg. The event loop is what a request waits on at 32 connections, so that work is
taken off it. Other databases (SQLite) read through the engine, as before.

Both readers give the same profiles (tests/integration/test_database.py holds them to
each other) and both retry once on a connection the server has closed.
"""

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import autocommit, json_text, read_retrying
from app.db.queries import POSTGRES_PROFILES, UserProfile, fetch_profiles, profile_of
from app.settings import DatabaseSettings


class ProfileReader(Protocol):
    in_flight: int  # reads worth running at once (the profile batcher's default)
    inline_lone: bool  # a lone request's model step on the loop pays (app.threadbatch)

    async def read(self, user_ids: Sequence[str], limit: int) -> dict[str, UserProfile]:
        """Profiles of the known users among `user_ids`, each with its `limit` newest
        events (unknown ids are left out)."""

    async def close(self) -> None: ...


def profile_reader(settings: DatabaseSettings, engine: AsyncEngine) -> ProfileReader:
    if engine.dialect.name == "postgresql":
        return AsyncpgProfiles(settings)
    return EngineProfiles(engine)


class EngineProfiles:
    """Through SQLAlchemy's engine (its pool; no BEGIN/ROLLBACK around the read)."""

    # SQLite, wrk at 32 connections, three alternating pairs: two reads at once gave
    # the same throughput and a worse p99 (22-32 ms against 20).
    in_flight = 1
    # A lone request's model step on the loop: c=1 p50 2.30-2.42 ms against 2.01-2.21 on
    # the model thread (likely, not profiled: the read's steps run on aiosqlite's thread
    # and overlapped the model thread's work; on the loop they take turns).
    inline_lone = False

    def __init__(self, engine: AsyncEngine):
        self.reads = autocommit(engine)

    async def read(self, user_ids: Sequence[str], limit: int) -> dict[str, UserProfile]:
        return await read_retrying(self.reads, lambda conn: fetch_profiles(conn, user_ids, limit))

    async def close(self) -> None:
        """The engine is the runtime's: disposed there."""


class AsyncpgProfiles:
    """Through an asyncpg pool of `pool_size` connections, opened as reads need them (a
    database down at start is not a failure: requests degrade until it is back). Each
    connection prepares the statement once (asyncpg's statement cache)."""

    # Two reads at once: a request arriving while one batch is read starts the next one
    # instead of waiting for it. wrk at 32 connections, three alternating pairs on
    # MovieLens: 2,647 / 2,613 / 2,595 req/s with one, 2,920 / 2,875 / 2,950 with two
    # (p99 17 -> 15.5 ms); three or four: the same as two.
    in_flight = 2
    # A lone request's model step on the loop, no hand-off to the model thread and back:
    # c=1 p50 1.30-1.42 ms against 1.44-1.54 (six alternating 4 s runs each).
    inline_lone = True

    def __init__(self, settings: DatabaseSettings):
        self._dsn, self._options = connect_options(settings.url)
        self._size, self._timeout = settings.pool_size, settings.timeout_seconds
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # the first reads arrive together (the pool warm-up)
            if self._pool is None:  # min_size 0: creating the pool connects nothing
                self._pool = await self._create()
        return self._pool

    async def _create(self) -> asyncpg.Pool:
        limits = {
            "timeout": self._timeout,  # connecting
            "command_timeout": self._timeout,  # each statement (requests: shorter deadlines)
        }
        return await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._size,
            init=_json_codecs,
            reset=_keep_session,
            **{**limits, **self._options},
        )

    async def read(self, user_ids: Sequence[str], limit: int) -> dict[str, UserProfile]:
        pool = await self._opened()
        values = {"ids": list(dict.fromkeys(user_ids)), "limit": limit}
        args = [values[name] for name in _ORDER]
        try:  # each statement bounded by the pool's command_timeout
            rows = await pool.fetch(_SQL, *args)
        except CLOSED:  # the server closed this connection (restart, idle timeout): once more
            rows = await pool.fetch(_SQL, *args)
        return {row[0]: profile_of(row[0], row[1], row[2], row[3]) for row in rows}

    async def close(self) -> None:
        """At once: a read hung on a paused server must not hold up shutdown."""
        if self._pool is not None:
            self._pool.terminate()


def connect_options(url: str) -> tuple[str, dict[str, Any]]:
    """The DSN asyncpg connects to, and the URL's query as connect arguments, as
    SQLAlchemy's asyncpg dialect passes them (`?ssl=require` -> `ssl="require"`), so the
    reader connects exactly as the engine does."""
    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    # The dialect's own translation types what it knows (a cache size as an int).
    _, arguments = postgresql.asyncpg.dialect().create_connect_args(parsed)
    options = {key: arguments[key] for key in parsed.query if key in arguments}
    for ours, theirs in ADAPTER_ARGUMENTS.items():
        if ours in options:  # asyncpg's own argument, when the URL also names it, wins
            options.setdefault(theirs, options.pop(ours))
    return dsn, options


# SQLAlchemy's arguments for its asyncpg adapter, which asyncpg itself refuses: each as
# asyncpg's nearest (the prepared statements cached per connection; 0, as for pgbouncer,
# none).
ADAPTER_ARGUMENTS = {"prepared_statement_cache_size": "statement_cache_size"}


# A connection found closed when used; the pool replaces it on the next acquire. A
# connection whose backend was terminated while idle can also fail with asyncpg's
# InternalClientError ("cannot switch to state ..."): seen when the server's notice of the
# termination arrived as the statement was sent.
CLOSED = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionResetError,
)


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """Attributes (jsonb) decoded by orjson, as the engine does (app.db.engine)."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: the reader only runs its one SELECT, outside a
    transaction (asyncpg still rolls back one left open). asyncpg's default reset query
    would cost every read a second round trip."""


def _compiled() -> tuple[str, list[str]]:
    """The statement as asyncpg takes it ($1, $2 ...) and its parameters' names in order."""
    compiled = POSTGRES_PROFILES.compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), list(compiled.positiontup or [])


_SQL, _ORDER = _compiled()
