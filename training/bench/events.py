"""What `recsys bench serve` posts to /events, and the cleanup after it.

The benchmark writes into the configured database, so its events belong to users of its
own (`bench-events-<n>`, new users the first time each posts) and are deleted, with those
users, when the run ends: the catalog is left as it was found.
"""

import asyncio
import json

from sqlalchemy import delete, select

from app.catalog import parse_catalog_config
from app.db.engine import create_engine
from app.db.tables import catalog, interactions, items, users
from app.settings import DatabaseSettings

BENCH_USER = "bench-events-"


def event_lines(url: str, how_many: int = 1000) -> list[str]:
    """`POST /events <body>` lines: one view-like event each, of a bench user, for a
    random item of the catalog."""
    kind, value, item_ids = asyncio.run(_catalog_facts(url, how_many))
    lines = []
    for n, item in enumerate(item_ids):
        event = {"user_id": f"{BENCH_USER}{n % 200}", "item_id": item, "type": kind}
        if value is not None:
            event["value"] = value
        lines.append("POST /events " + json.dumps(event, separators=(",", ":")))
    return lines


async def _catalog_facts(url: str, n: int) -> tuple[str, float | None, list[str]]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            config = parse_catalog_config(
                (await conn.execute(select(catalog.c.config))).scalar_one()
            )
            rows = await conn.execute(select(items.c.id).limit(n))
            item_ids = [row[0] for row in rows]
    finally:
        await engine.dispose()
    kinds = config.interactions.event_types
    kind = next((k for k in kinds if k != "rating"), kinds[0])
    low = config.interactions.rating_range[0] if config.interactions.rating_range else 1.0
    return kind, (low if kind == "rating" else None), item_ids


def forget_bench_events(url: str) -> None:
    """Delete what the benchmark posted: its users' events, then those users."""

    async def go() -> None:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.begin() as conn:
                mine = users.c.id.like(f"{BENCH_USER}%")
                await conn.execute(
                    delete(interactions).where(interactions.c.user_id.like(f"{BENCH_USER}%"))
                )
                await conn.execute(delete(users).where(mine))
        finally:
            await engine.dispose()

    asyncio.run(go())
