"""The FastAPI application: lifespan loads the live version and opens the database."""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import reference
from app.artifacts import load_live
from app.db.engine import create_engine, safe_url
from app.deps import Runtime
from app.errors import install_error_handlers
from app.retrieval import QueryBatcher
from app.routes import router
from app.settings import Settings, get_settings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.basicConfig(level=config.log_level.upper())
        # Fails fast (and the process exits) when no usable version is published.
        version = await asyncio.to_thread(
            load_live, config.artifacts.dir, verify=config.artifacts.verify_checksums
        )
        engine = create_engine(config.database)
        batcher = QueryBatcher()
        await batcher.start()
        app.state.runtime = Runtime(
            settings=config, engine=engine, batcher=batcher, version=version
        )
        log.info("serving %s from %s", version.version, safe_url(config.database.url))
        try:
            yield
        finally:
            await batcher.stop()
            await engine.dispose()

    app = FastAPI(title="recsys", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(router)
    if config.serving.reference_route:
        app.include_router(reference.router)
    return app


app = create_app()
