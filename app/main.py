"""The FastAPI application: the lifespan loads and warms the live version, opens the
database, and starts the micro-batchers; nothing heavy happens at import."""

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app import reference
from app.artifacts import configure_tensorflow, load_live
from app.db.engine import create_engine, safe_url
from app.db.queries import fetch_profiles
from app.errors import DATABASE_ERRORS, install_error_handlers
from app.routes import router
from app.runtime import build_runtime
from app.settings import Settings, get_settings
from app.version import ModelVersion

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.basicConfig(level=config.log_level.upper())
        # Fails fast (and the process exits) when no usable version is published.
        version = await asyncio.to_thread(load_ready, config)
        engine = create_engine(config.database)
        await open_connections(engine, config)
        app.state.runtime = runtime = build_runtime(config, engine, version)
        if config.serving.warm_up:
            await runtime.warm()
        # What is loaded now lives as long as the process: keep the collector off it.
        gc.freeze()
        log.info("serving %s from %s", version.version, safe_url(config.database.url))
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="recsys", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(router)
    if config.serving.reference_route:
        app.include_router(reference.router)
    return app


def load_ready(config: Settings) -> ModelVersion:
    """The live version, loaded and verified (the runtime warms it up on its thread)."""
    configure_tensorflow(config.serving.tf_intra_op_threads, config.serving.tf_inter_op_threads)
    return load_live(config.artifacts.dir, verify=config.artifacts.verify_checksums)


async def open_connections(engine: AsyncEngine, config: Settings) -> None:
    """Fill the pool and prepare the profile statement on each connection, so the first
    requests do not pay for connecting. Best effort: a database that is down now is the
    request path's business (it degrades), not a reason not to start."""

    async def one() -> None:
        async with engine.connect() as conn:
            await fetch_profiles(conn, [], config.serving.max_seen_items)

    try:
        await asyncio.gather(*(one() for _ in range(config.database.pool_size)))
    except DATABASE_ERRORS as exc:
        log.warning("database not reachable at start (%s); serving fallbacks until it is", exc)


app = create_app()
