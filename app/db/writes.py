"""Request-time writes: a batch of posted events, in one transaction.

Events enter `interactions`, the table the profile read and the training job read, so
the next request sees them (in its history and its seen set) and the next training run
learns from them. A retried post stores nothing twice: an event whose client id, or
whose (user, item, type, time), is already stored is skipped.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.catalog import CatalogConfig, parse_catalog_config
from app.db.tables import catalog, interactions, items, users


@dataclass(frozen=True)
class NewEvent:
    user_id: str
    item_id: str
    event_type: str
    rating: float | None
    occurred_at: datetime
    event_id: str | None


@dataclass(frozen=True)
class Stored:
    stored: int
    duplicates: int
    users_created: int


async def stored_catalog(conn: AsyncConnection) -> CatalogConfig | None:
    """The catalog the database holds now (its event types may be newer than the model
    version's: a reload of the config needs no retraining to take new kinds of events)."""
    row = (await conn.execute(select(catalog.c.config).limit(1))).first()
    return parse_catalog_config(row[0], "the database's catalog") if row else None


async def missing_items(conn: AsyncConnection, item_ids: Sequence[str]) -> set[str]:
    """The ids among `item_ids` that are not in the catalog."""
    wanted = set(item_ids)
    found = await conn.execute(select(items.c.id).where(items.c.id.in_(wanted)))
    return wanted - {row[0] for row in found}


async def store_events(conn: AsyncConnection, events: Sequence[NewEvent]) -> Stored:
    """Insert the events (creating unknown users) inside the caller's transaction; one
    statement per table, RETURNING only the rows a conflict did not skip."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    new_users = [
        {"id": user_id, "attributes": {}} for user_id in sorted({e.user_id for e in events})
    ]
    created = await conn.execute(
        insert(users).on_conflict_do_nothing().returning(users.c.id), new_users
    )
    rows = [
        {
            "user_id": e.user_id,
            "item_id": e.item_id,
            "event_type": e.event_type,
            "rating": e.rating,
            "occurred_at": e.occurred_at,
            "event_id": e.event_id,
        }
        for e in events
    ]
    inserted = await conn.execute(
        insert(interactions).on_conflict_do_nothing().returning(interactions.c.id), rows
    )
    stored = len(inserted.all())
    return Stored(stored=stored, duplicates=len(rows) - stored, users_created=len(created.all()))
