"""Shared fixtures: real databases (SQLite and PostgreSQL), MovieLens, real artifacts.

Locally a missing PostgreSQL or MovieLens folder skips the tests that need it; in CI
(`CI=true`) it fails them, so CI can never pass by skipping.
"""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.catalog import CatalogConfig  # noqa: E402
from app.db.engine import create_engine  # noqa: E402
from app.settings import ArtifactSettings, DatabaseSettings, Settings  # noqa: E402

IN_CI = os.environ.get("CI") == "true"
ADMIN_URL = os.environ.get(
    "RECSYS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgres"]


def require(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    raw = os.environ.get("RECSYS_MOVIELENS_DIR", "")
    require(
        bool(raw) and Path(raw, "u.data").is_file(),
        "set RECSYS_MOVIELENS_DIR to a folder holding MovieLens 100K",
    )
    return Path(raw)


async def _admin(sql: str) -> None:
    import asyncpg

    url = make_url(ADMIN_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_available() -> bool:
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, Exception):  # noqa: BLE001 (any failure means: not available)
        return False
    return True


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    require(_postgres_available(), f"PostgreSQL not reachable at {ADMIN_URL}")
    return ADMIN_URL


class DatabaseFactory:
    """Creates empty, migrated databases of either backend; drops them at session end."""

    def __init__(self, tmp: Path, admin_url: str | None):
        self.tmp, self.admin_url, self.created = tmp, admin_url, []

    def empty(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / (uuid.uuid4().hex + '.db')}"
        assert self.admin_url, "PostgreSQL is not available"
        name = f"recsys_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def migrated(self, backend: str) -> str:
        from training.migrate import upgrade

        url = self.empty(backend)
        upgrade(url)
        return url

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory, request) -> Iterator[DatabaseFactory]:
    admin = ADMIN_URL if _postgres_available() else None
    factory = DatabaseFactory(tmp_path_factory.mktemp("sqlite"), admin)
    yield factory
    if admin:
        factory.drop_all()


def backend_available(backend: str) -> None:
    if backend == "postgres":
        require(_postgres_available(), f"PostgreSQL not reachable at {ADMIN_URL}")


@dataclass(frozen=True)
class CatalogFiles:
    """A catalog config and the folder holding its files: what `load_into` loads."""

    config: CatalogConfig
    folder: Path


@pytest.fixture(scope="session")
def movielens(movielens_dir: Path) -> CatalogFiles:
    """MovieLens 100K as the shipped `movielens-100k` catalog reads it."""
    from app.catalog import read_catalog_config
    from training.catalog_files import find_catalog

    return CatalogFiles(read_catalog_config(find_catalog("movielens-100k")), movielens_dir)


def load_into(url: str, source: CatalogFiles) -> dict[str, int]:
    """`recsys data load` of `source` into the database at `url`: the table counts after."""
    from training.load import load_catalog

    async def go() -> dict[str, int]:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            return await load_catalog(engine, source.config, source.folder)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="session", params=BACKENDS)
def loaded_database(request, databases: DatabaseFactory, movielens) -> str:
    """A migrated database of each backend holding all of MovieLens 100K."""
    backend_available(request.param)
    url = databases.migrated(request.param)
    load_into(url, movielens)
    return url


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory, databases, movielens) -> Path:
    """A real published version: trained for one epoch on the first 80 users."""
    from rich.console import Console

    from training.config import TrainConfig
    from training.pipeline import run

    url = databases.migrated("sqlite")
    load_into(url, movielens)
    folder = tmp_path_factory.mktemp("artifacts")
    settings = Settings(database=DatabaseSettings(url=url), artifacts=ArtifactSettings(dir=folder))
    config = TrainConfig(epochs=1, batch_size=512)
    config.ranker.epochs = 1
    run(settings, config, console=Console(quiet=True), max_users=80)
    return folder


@contextlib.asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator:
    """An httpx client on the app in-process, lifespan included (loads the real version)."""
    import httpx

    from app.main import create_app

    app = create_app(settings)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="session")
async def client(loaded_database: str, artifacts_dir: Path):
    """The app in-process on each backend's MovieLens database and the test version:
    for tests that only read (writers make a database of their own)."""
    settings = Settings(
        database=DatabaseSettings(url=loaded_database),
        artifacts=ArtifactSettings(dir=artifacts_dir),
    )
    async with app_client(settings) as client:
        yield client
