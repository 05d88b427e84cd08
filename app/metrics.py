"""Prometheus metrics, through the maintained client library; served at /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

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


def observe_batch(stage: str, size: int, waits: list[float]) -> None:
    BATCH_SIZE.labels(stage).observe(size)
    wait = QUEUE_WAIT.labels(stage)
    for seconds in waits:
        wait.observe(seconds)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
