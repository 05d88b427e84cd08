"""The first request after start, and what any request costs after a pause.

Warm-up at load exists so the first request does not pay the service's one-time costs
(TensorFlow's first calls, ScaNN's first search at each depth, the statement's first
preparation). On a small virtual machine, though, any request that follows an idle spell
is slower than one in a steady stream, a bare route's too: the CPU's caches and the
virtual CPU itself go cold. So the first request is measured beside requests to the same,
long-warm server, each after the same kind of pause, and beside the bare reference route
after a pause: what the service adds to a cold request, apart from what the machine does.
"""

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from training.bench.server import Server
from training.bench.wrk import LoadGeneratorError, run_wrk

REFERENCE_PATH = "/bench/reference"
RUN_SECONDS = 2  # each timed wrk run; an answer slower than this is missing (an error)


@dataclass(frozen=True)
class ColdPath:
    version: str  # the version that answered
    first_ms: float  # the first /recommendations after start
    next_p50_ms: float  # the requests that follow it, one connection
    after_pause_ms: float  # median of /recommendations each after a pause (warm server)
    reference_next_p50_ms: float  # the reference route, one request after another
    reference_after_pause_ms: float  # ... and each after a pause

    def as_dict(self) -> dict:
        return {
            "first_request_ms": round(self.first_ms, 2),
            "first_request_next_p50_ms": round(self.next_p50_ms, 2),
            "first_request_vs_next_p50": round(self.first_ms / self.next_p50_ms, 2),
            "after_pause_ms": round(self.after_pause_ms, 2),
            "first_request_vs_after_pause": round(self.first_ms / self.after_pause_ms, 2),
            "reference_after_pause_vs_next_p50": round(
                self.reference_after_pause_ms / self.reference_next_p50_ms, 2
            ),
        }


def measure(
    server: Server,
    service: Path,
    reference: Path,
    *,
    after: int = 20,
    pauses: int = 5,
    pause: float = 0.5,
) -> ColdPath:
    """Time the first /recommendations after start, the `after` requests that follow, then
    `pauses` requests of each route after `pause` s (`service`, `reference`: wrk paths
    files). Every figure is wrk's (one connection, from the request written to the answer
    read), the instrument of the steady p50 it is compared with: a Python client would add
    its own ~1 ms to the cold figures only."""
    first = _timed(server, service, 1)[0]
    following = _timed(server, service, after)
    reference_next = _timed(server, reference, after)
    after_pause, reference_after_pause = [], []
    for _ in range(pauses):
        time.sleep(pause)
        after_pause.append(_timed(server, service, 1)[0])
        time.sleep(pause)
        reference_after_pause.append(_timed(server, reference, 1)[0])
    path = service.read_text().split("\n", 1)[0]
    version = httpx.get(f"{server.base}{path}", timeout=60).raise_for_status()
    return ColdPath(
        version=version.json()["model_version"],
        first_ms=first,
        next_p50_ms=following[1],
        after_pause_ms=statistics.median(after_pause),
        reference_next_p50_ms=reference_next[1],
        reference_after_pause_ms=statistics.median(reference_after_pause),
    )


def _timed(server: Server, paths: Path, requests: int) -> tuple[float, float]:
    """(slowest, median) ms of `requests` answers in a row on one new connection."""
    result = run_wrk(server.base, paths, connections=1, seconds=RUN_SECONDS, stop_after=requests)
    if result.requests < requests or result.errors:
        raise LoadGeneratorError(
            f"{requests} requests on one connection: {result.requests} answered in "
            f"{RUN_SECONDS} s, {result.errors} errors"
        )
    return result.max_ms, result.p50_ms


def describe(entry: dict) -> str:
    """The bench's line about the cold path, from its JSON entry."""
    ratio = entry["first_request_vs_p50"]
    return (
        f"first /recommendations after start (wrk, one connection):"
        f" {entry['first_request_ms']:.2f} ms"
        + (f" ({ratio:.2f}x wrk's steady p50 at the lowest concurrency)" if ratio else "")
        + f"; {entry['first_request_vs_next_p50']:.2f}x the p50 of the 20 requests that"
        f" follow it ({entry['first_request_next_p50_ms']:.2f} ms)."
        f" On the warm server, a request after a pause: {entry['after_pause_ms']:.2f} ms"
        f" (the first is {entry['first_request_vs_after_pause']:.2f}x of it); the bare"
        f" reference route after a pause: {entry['reference_after_pause_vs_next_p50']:.2f}x"
        " its own p50"
    )
