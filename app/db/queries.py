"""Request-time reads: one round trip each."""

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import interactions, items, users

# The user attributes a profile carries, by the feature names the models use for them.
PROFILE_ATTRIBUTES = ("user_id", "age", "gender", "occupation", "zip_code")


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    age: int | None
    gender: str | None
    occupation: str | None
    zip_code: str | None
    history: list[str] = field(default_factory=list)  # item ids, most recent first
    # The rating of each history entry (None: the event had none); parallel to history.
    history_ratings: list[float | None] = field(default_factory=list)

    def attributes(self) -> dict:
        return {name: getattr(self, name) for name in PROFILE_ATTRIBUTES}


async def fetch_profile(conn: AsyncConnection, user_id: str, limit: int) -> UserProfile | None:
    """The user's attributes and up to `limit` most recent item ids; None if unknown.

    One statement: users LEFT JOIN interactions, newest first, ties broken by insertion
    id exactly as training orders them.
    """
    stmt = (
        select(
            users.c.age,
            users.c.gender,
            users.c.occupation,
            users.c.zip_code,
            interactions.c.item_id,
            interactions.c.rating,
        )
        .select_from(users.outerjoin(interactions, interactions.c.user_id == users.c.id))
        .where(users.c.id == user_id)
        .order_by(interactions.c.occurred_at.desc(), interactions.c.id.desc())
        .limit(limit)
    )
    rows = (await conn.execute(stmt)).all()
    if not rows:
        return None
    first = rows[0]
    events = [row for row in rows if row.item_id is not None]
    return UserProfile(
        user_id=user_id,
        age=first.age,
        gender=first.gender,
        occupation=first.occupation,
        zip_code=first.zip_code,
        history=[row.item_id for row in events],
        history_ratings=[row.rating for row in events],
    )


async def fetch_items(conn: AsyncConnection, item_ids: list[str]) -> dict[str, dict]:
    """Catalog fields of the given items, by id (unknown ids are simply absent)."""
    if not item_ids:
        return {}
    stmt = select(items).where(items.c.id.in_(item_ids))
    return {row["id"]: dict(row) for row in (await conn.execute(stmt)).mappings()}
