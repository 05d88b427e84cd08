"""One typed settings object per process, grouped by concern, read from `RECSYS_*`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = {"env_file": ".env", "extra": "ignore"}


class DatabaseSettings(BaseSettings):
    """Where users, items and interactions live (`RECSYS_DATABASE_*`)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_DATABASE_", **_ENV)  # type: ignore[typeddict-item]

    url: str = "sqlite+aiosqlite:///./var/recsys.db"
    pool_size: int = Field(default=5, ge=1)
    # Connecting and each statement (the driver's own limits; CLI jobs run under these).
    timeout_seconds: float = Field(default=5.0, gt=0)
    # Request path: each read's deadline (pool wait included); a miss counts as a failure.
    read_deadline_seconds: float = Field(default=0.5, gt=0)
    # This many failures in a row open the circuit breaker: reads fail at once (fallbacks)
    # while a probe every `probe_seconds` waits for the database to come back.
    breaker_threshold: int = Field(default=3, ge=1)
    probe_seconds: float = Field(default=0.5, gt=0)
    # During an outage: one log line per this interval, with a count.
    outage_log_seconds: float = Field(default=10.0, gt=0)
    # POST /events: a write's deadline (a write is a transaction of a few statements).
    write_deadline_seconds: float = Field(default=2.0, gt=0)


class ArtifactSettings(BaseSettings):
    """Where trained versions are published and read from (`RECSYS_ARTIFACTS_*`)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_ARTIFACTS_", **_ENV)  # type: ignore[typeddict-item]

    dir: Path = Path("./artifacts")
    verify_checksums: bool = True
    # How often the app looks at LIVE and SPLIT for a new version (0: only on
    # POST /admin/reload or SIGHUP). A check is two small file reads.
    poll_seconds: float = Field(default=5.0, ge=0)


class MovieLensSettings(BaseSettings):
    """Where the MovieLens 100K files are (`RECSYS_MOVIELENS_*`); unset means download."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_MOVIELENS_", **_ENV)  # type: ignore[typeddict-item]

    dir: Path | None = None
    url: str = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    download_dir: Path = Path("./var/data")


class TrainingSettings(BaseSettings):
    """The offline job (`RECSYS_TRAINING_*`)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_TRAINING_", **_ENV)  # type: ignore[typeddict-item]

    # Written by `recsys tune`, read by `recsys train`; absent means the built-in defaults.
    config_file: Path = Path("./var/train_config.json")
    # MLflow tracking (optional, `pip install mlflow-skinny`): when set, every training
    # run logs its parameters, metrics per epoch and the version folder there.
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "recsys"
    # Where a new experiment keeps its artifacts (default: the tracking server's choice;
    # for a local SQLite store, ./mlruns).
    mlflow_artifact_location: str | None = None


class ServingSettings(BaseSettings):
    """Request-time limits (`RECSYS_SERVING_*`)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_SERVING_", **_ENV)  # type: ignore[typeddict-item]

    # Items a user has seen beyond this many (most recent kept) are no longer excluded.
    max_seen_items: int = Field(default=2000, ge=1)
    max_user_id_length: int = Field(default=64, ge=1)
    max_k: int = Field(default=100, ge=1)
    # GET /bench/reference: a fixed 10-item list, no database, no model; `recsys bench
    # serve` turns it on to measure what the framework itself allows on this machine.
    reference_route: bool = False
    # Micro-batching: at most this many requests per batch; a window above 0 holds a
    # batch open that long for company (0: start as soon as the previous batch is done).
    batch_max_size: int = Field(default=64, ge=1)
    batch_window_ms: float = Field(default=0.0, ge=0)
    # Profile reads (one statement per batch) running at once. None: the reader's own,
    # measured: 2 on PostgreSQL (asyncpg), 1 on SQLite (app.db.profiles).
    profile_reads_in_flight: int | None = Field(default=None, ge=1, le=16)
    # Requests on the model path at once (queued or running); past it: 503 + Retry-After
    # at once. About 8 batches' worth: a full queue waits ~8 batch times, not unbounded.
    max_in_flight: int = Field(default=512, ge=1)
    # TensorFlow's thread pools (0: TensorFlow's default, one thread per core). On a
    # small machine one intra-op thread leaves the cores to the event loop and the
    # database; the micro-batcher, not op-level parallelism, is what makes use of
    # concurrency. Inter-op -1 runs each call's ops on the calling thread (the model
    # thread) instead of handing them to a pool thread and waiting: measured, a query
    # tower call for a batch of 17 took 0.30-0.33 ms against 0.51-0.53 ms with a pool
    # of one, and two context switches fewer. A pool (N) only pays for a model with
    # parallel branches and cores to spare.
    tf_intra_op_threads: int = Field(default=1, ge=0)
    tf_inter_op_threads: int = Field(default=-1, ge=-1)
    # How long a thread may keep the interpreter lock while another waits for it (Python's
    # default: 5 ms). The model thread gives the lock up in every TensorFlow, ScaNN and
    # large numpy call and then waits for the event loop to hand it back: wrk at 32
    # connections, the query-tower call took 3.5-3.9 ms of the clock with 5 ms against
    # 2.3 ms with 0.5 ms (README, Performance).
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)
    # Threads numpy's BLAS may use for one matrix product (0: its default, one per core,
    # which then spin idle after each product and take the cores from the event loop).
    blas_threads: int = Field(default=1, ge=0)
    # A request alone in flight, finding the model thread idle, runs its model step on the
    # event loop: no hand-off to the model thread and back (two thread wake-ups). Under
    # load requests queue for the model thread and are batched as before. None: the
    # profile reader's measured default (app.db.profiles): on for PostgreSQL, off for
    # SQLite.
    inline_lone_requests: bool | None = None
    # Threads one batched ScaNN search may split its queries over (1: the model thread
    # alone). Worth raising with a large catalog and cores to spare.
    search_threads: int = Field(default=1, ge=1, le=64)
    # Run the request path at a few batch sizes before a version takes traffic.
    warm_up: bool = True
    # Most events one POST /events may carry (all stored, or none); 500 at most.
    max_events_per_post: int = Field(default=500, ge=1, le=500)
    # How far in the future a posted event's timestamp may be (clocks differ).
    event_clock_skew_seconds: float = Field(default=60.0, ge=0)
    # One structured line per request (request id, route, status, latency, outcome),
    # written by the app in place of uvicorn's access log.
    access_log: bool = True
    # Peers (addresses or networks, comma-separated) whose X-Forwarded-For/-Proto are
    # believed: the proxy in front (nginx). Empty: nobody's; the peer is the client.
    trusted_proxies: str = ""


class Settings(BaseSettings):
    """Everything one process needs; build it with `get_settings()`."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", **_ENV)  # type: ignore[typeddict-item]

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    movielens: MovieLensSettings = Field(default_factory=MovieLensSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    log_level: str = "info"
    # "json": one JSON object per line (for log collectors); "text": for a terminal.
    log_format: Literal["json", "text"] = "json"
    # Bearer token for POST /admin/reload; unset, the admin routes do not exist (404).
    admin_token: SecretStr | None = None
    # Key for writes (POST /events, the page's likes), sent as X-API-Key; unset, writes
    # are open (fine on a laptop, not behind a public nginx).
    api_key: SecretStr | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
