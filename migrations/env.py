"""Alembic environment: runs revisions over the same async engine the app uses."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.db.engine import create_engine
from app.db.tables import metadata
from app.settings import DatabaseSettings

config = context.config


def _database_settings() -> DatabaseSettings:
    # A URL put on the Config (tests, `recsys db upgrade --url`) wins over the environment.
    url = config.attributes.get("database_url")
    return DatabaseSettings(url=url) if url else DatabaseSettings()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_database_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_settings().url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
