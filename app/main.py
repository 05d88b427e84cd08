"""The FastAPI application: the lifespan starts the model registry (live version loaded
and warmed), opens the database, starts the micro-batchers and follows new versions;
nothing heavy happens at import."""

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import admin, events, items, logs, page, reference
from app.accesslog import AccessLog
from app.admission import Admission, AdmissionGate
from app.artifacts import configure_tensorflow
from app.db.engine import create_engine, safe_url
from app.db.profiles import ProfileReader
from app.edges import HeadAsGet, HeaderLimits
from app.errors import DATABASE_ERRORS, install_error_handlers
from app.observe import Observe
from app.registry import ModelRegistry
from app.routes import ADMITTED, router
from app.runtime import build_runtime
from app.serving import warm_up
from app.settings import Settings, get_settings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or get_settings()
    access = AccessLog(config.log_format) if config.serving.access_log else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.configure(config.log_level, config.log_format)
        registry = ModelRegistry(
            config.artifacts.dir,
            verify=config.artifacts.verify_checksums,
            warm=warm_up,
            search_threads=config.serving.search_threads,
        )
        # Fails fast (and the process exits) when no version at all can be served.
        await asyncio.to_thread(start_registry, config, registry)
        engine = create_engine(config.database)
        admission: Admission = app.state.admission
        app.state.runtime = runtime = build_runtime(config, engine, registry, admission.alone)
        await open_connections(runtime.reader, config)
        if config.serving.warm_up:
            await runtime.warm()
        log.info("serving %s from %s", registry.live, safe_url(config.database.url))
        async with follow_versions(registry, config.artifacts.poll_seconds):
            try:
                yield
            finally:
                await runtime.stop()
                if access is not None:
                    access.flush()

    app = FastAPI(title="recsys", version="0.1.0", lifespan=lifespan)
    app.state.admission = Admission(config.serving.max_in_flight)
    app.add_middleware(AdmissionGate, routes=ADMITTED)
    app.add_middleware(HeaderLimits)
    app.add_middleware(HeadAsGet)
    app.add_middleware(Observe, access=access)  # outermost: times and counts everything
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(events.router)
    app.include_router(items.router)
    app.include_router(page.router)
    page.mount_page(app)
    app.state.api_key = config.api_key.get_secret_value() if config.api_key else None
    if config.admin_token is not None:
        app.state.admin_token = config.admin_token.get_secret_value()
        app.include_router(admin.router)
    if config.serving.reference_route:
        app.include_router(reference.router)
    return app


def start_registry(config: Settings, registry: ModelRegistry) -> None:
    configure_tensorflow(config.serving.tf_intra_op_threads, config.serving.tf_inter_op_threads)
    limit_blas(config.serving.blas_threads)
    sys.setswitchinterval(config.serving.gil_switch_interval_ms / 1000)
    # The libraries' objects (TensorFlow alone: ~350k) live as long as the process: keep
    # the collector off them. Versions are loaded after this, so they stay collectable,
    # and collecting one costs its own size (tens of ms), not TensorFlow's (~0.4 s).
    import scann  # noqa: F401  (imported now so its objects are frozen too)

    gc.collect()
    gc.freeze()
    registry.start()


def limit_blas(threads: int) -> None:
    """Cap numpy's BLAS threads for the process (0: leave its default). Measured with wrk
    at 32 connections: the exact search's products with OpenBLAS's default threads gave a
    p99 of 29-53 ms, with one thread 19-24 ms."""
    if threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")


@asynccontextmanager
async def follow_versions(registry: ModelRegistry, poll_seconds: float) -> AsyncIterator[None]:
    """Poll for new versions and reload on SIGHUP (where the process owns its signals)."""
    watcher = asyncio.create_task(registry.watch(poll_seconds)) if poll_seconds else None
    loop = asyncio.get_running_loop()
    hangup = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(registry.refresh()))
        hangup = True
    try:
        yield
    finally:
        if hangup:
            loop.remove_signal_handler(signal.SIGHUP)
        if watcher:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def open_connections(reader: ProfileReader, config: Settings) -> None:
    """Fill the profile reader's pool and prepare its statement on each connection, so
    the first requests do not pay for connecting. Best effort: a database that is down now
    is the request path's business (it degrades), not a reason not to start."""
    limit = config.serving.max_seen_items
    try:
        await asyncio.gather(*(reader.read([], limit) for _ in range(config.database.pool_size)))
    except DATABASE_ERRORS as exc:
        log.warning("database not reachable at start (%s); serving fallbacks until it is", exc)


app = create_app()
