"""Load parsed MovieLens rows into the database: batched upserts in one transaction.

Idempotent: users and items are upserted by id, interactions are inserted only if their
natural key (user, item, event type, time) is new, so a second run leaves the same rows.
One transaction: a failure part-way leaves the database as it was.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import interactions, items, users
from training.movielens import MovieLens

BATCH_SIZE = 2000
Progress = Callable[[str, int], None]


async def load_movielens(
    engine: AsyncEngine, data: MovieLens, *, on_batch: Progress | None = None
) -> dict[str, int]:
    """Write all rows; returns the table row counts after the load."""
    report = on_batch or (lambda _table, _rows: None)
    async with engine.begin() as conn:
        await _upsert(conn, users, data.users, ["id"], report)
        await _upsert(conn, items, data.items, ["id"], report)
        await _upsert(
            conn,
            interactions,
            data.interactions,
            ["user_id", "item_id", "event_type", "occurred_at"],
            report,
            update=False,
        )
        # Fresh planner statistics: the request path's plans depend on them.
        await conn.execute(text("ANALYZE"))
        return {t.name: await _count(conn, t) for t in (users, items, interactions)}


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: list[str],
    report: Progress,
    *,
    update: bool = True,
) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        stmt = insert(table)
        if update:
            changed = {c: stmt.excluded[c] for c in batch[0] if c not in key}
            stmt = stmt.on_conflict_do_update(index_elements=key, set_=changed)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=key)
        await conn.execute(stmt, list(batch))
        report(table.name, len(batch))


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
