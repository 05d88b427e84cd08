"""Request-time reads: one statement for a whole micro-batch of users.

Each user comes back as one row: the attributes (one JSON column, whatever the catalog
declares), and the most recent `limit` events
aggregated in the database (PostgreSQL: two ARRAY(subquery) columns; SQLite: one JSON
array), read newest first by a backward scan of the covering index on
(user_id, occurred_at, id, item_id, rating). Ties in time break by insertion id, exactly
as training orders them. The request path runs the PostgreSQL statement through asyncpg
directly (app.db.profiles); `fetch_profiles` runs either through SQLAlchemy.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ARRAY, Integer, Select, String, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import interactions, users

_COLUMNS = (users.c.id, users.c.attributes)


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    # The catalog's user fields by name, as stored (strings, numbers, null); {} for a
    # catalog without user attributes.
    attributes: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # item ids, most recent first
    # The rating of each history entry (None: the event had none); parallel to history.
    history_ratings: list[float | None] = field(default_factory=list)


async def fetch_profiles(
    conn: AsyncConnection, user_ids: Sequence[str], limit: int
) -> dict[str, UserProfile]:
    """Profiles of the known users among `user_ids`, each with its `limit` newest events."""
    wanted = list(dict.fromkeys(user_ids))
    if conn.dialect.name == "postgresql":
        result = await conn.execute(POSTGRES_PROFILES, {"ids": wanted, "limit": limit})
        return {row[0]: profile_of(row[0], row[1], row.item_ids, row.ratings) for row in result}
    result = await conn.execute(_SQLITE, {"ids": orjson.dumps(wanted).decode(), "limit": limit})
    profiles = {}
    for row in result:
        events = orjson.loads(row.events) if row.events else []
        history, ratings = [e[0] for e in events], [e[1] for e in events]
        profiles[row[0]] = profile_of(row[0], row[1], history, ratings)
    return profiles


def profile_of(
    user_id: str, attributes: Any, history: list[str] | None, ratings: list[float | None] | None
) -> UserProfile:
    """A profile from one row's columns (a user without events: no history)."""
    return UserProfile(user_id, attributes or {}, history or [], ratings or [])


def _recent(*columns: Any) -> Select:
    """This user's newest `limit` events (correlated to the outer users row)."""
    return (
        select(*columns)
        .where(interactions.c.user_id == users.c.id)
        .order_by(interactions.c.occurred_at.desc(), interactions.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .correlate(users)
    )


def _postgres() -> Select:
    # ARRAY(subquery) keeps the subquery's order, so no sort beyond the index's own order
    # (array_agg(... ORDER BY) re-sorted every user's events: twice as slow per batch).
    # The two arrays follow the same total order (time, then unique id), so they align.
    def newest(column: Any) -> Any:
        return func.array(_recent(column).scalar_subquery())

    # One statement shape for any batch size (an array parameter, not an IN list), so
    # asyncpg prepares it once per connection.
    ids = bindparam("ids", type_=ARRAY(String))
    return select(
        *_COLUMNS,
        newest(interactions.c.item_id).label("item_ids"),
        newest(interactions.c.rating).label("ratings"),
    ).where(users.c.id == any_(ids))


def _sqlite() -> Select:
    # SQLite aggregates rows in the order its subquery produces them (newest first here).
    recent = _recent(interactions.c.item_id, interactions.c.rating).subquery("recent")
    events = select(func.json_group_array(func.json_array(recent.c.item_id, recent.c.rating)))
    ids = select(func.json_each(bindparam("ids")).table_valued("value").c.value)
    return select(*_COLUMNS, events.scalar_subquery().label("events")).where(users.c.id.in_(ids))


POSTGRES_PROFILES, _SQLITE = _postgres(), _sqlite()
