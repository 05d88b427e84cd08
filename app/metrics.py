"""Prometheus metrics, through the maintained client library; served at /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

BATCH_SIZE = Histogram(
    "recsys_batch_size",
    "Requests handled together in one micro-batch, by stage.",
    ["stage"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
QUEUE_WAIT = Histogram(
    "recsys_batch_queue_wait_seconds",
    "Time a request waited for its micro-batch to start, by stage.",
    ["stage"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

DB_LATENCY = Histogram(
    "recsys_database_read_seconds",
    "Duration of the database reads that succeeded.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
DB_ERRORS = Counter(
    "recsys_database_errors_total", "Database reads that failed or missed their deadline."
)
BREAKER_OPEN = Gauge(
    "recsys_database_breaker_open", "1 while the database circuit breaker is open, else 0."
)
REJECTED = Counter(
    "recsys_rejected_total", "Requests refused at once (503) because too many were in flight."
)
FALLBACKS = Counter(
    "recsys_fallbacks_total", "Non-personalised (popular) answers, by reason.", ["reason"]
)
EVENTS = Counter(
    "recsys_events_total",
    "Events posted to /events: stored, duplicate (already stored) or rejected (invalid).",
    ["outcome"],
)


REQUEST_LATENCY = Histogram(
    "recsys_http_request_duration_seconds",
    "Time from a request's arrival to its response's end, by route template, method "
    "and status (route 'unmatched' for paths no route serves).",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL_INFO = Gauge(
    "recsys_model_info",
    "1 for each model version serving: role 'live', or 'candidate' in an A/B split.",
    ["version", "role"],
)
MODEL_LOADS = Counter(
    "recsys_model_loads_total",
    "Model versions loaded (taken into service) or refused (kept out, with the reason "
    "in /healthz), at start and on every reload.",
    ["outcome"],
)
MODEL_SWAPS = Counter("recsys_model_swaps_total", "Times what serves changed without a restart.")


_request_series: dict[tuple[str, str, int], Histogram] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    # The labelled child looked up once per (route, method, status), not per request.
    key = (route, method, status)
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = REQUEST_LATENCY.labels(route, method, str(status))
    series.observe(seconds)


def show_versions(live: str, candidate: str | None) -> None:
    MODEL_INFO.clear()
    MODEL_INFO.labels(live, "live").set(1)
    if candidate is not None:
        MODEL_INFO.labels(candidate, "candidate").set(1)


def observe_batch(stage: str, size: int, waits: list[float]) -> None:
    BATCH_SIZE.labels(stage).observe(size)
    wait = QUEUE_WAIT.labels(stage)
    for seconds in waits:
        wait.observe(seconds)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
