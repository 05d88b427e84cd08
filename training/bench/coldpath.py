"""The first request after start, and what any request costs after a pause.

Warm-up at load exists so the first request does not pay the service's one-time costs
(TensorFlow's first calls, ScaNN's first search at each depth, the statement's first
preparation). On a small virtual machine, though, any request that follows an idle spell
is slower than one in a steady stream, a bare route's too: the CPU's caches and the
virtual CPU itself go cold. So the first request is measured beside requests to the same,
long-warm server, each after the same kind of pause, and beside the bare reference route
after a pause: what the service adds to a cold request, apart from what the machine does.
"""

import random
import statistics
import time
from dataclasses import dataclass

import httpx

from training.bench.server import Server

REFERENCE_PATH = "/bench/reference"


@dataclass(frozen=True)
class ColdPath:
    version: str  # the version that answered
    first_ms: float  # the first /recommendations after start
    next_p50_ms: float  # the requests that follow it on the same client
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
    server: Server, users: list[str], *, after: int = 20, pauses: int = 5, pause: float = 0.5
) -> ColdPath:
    """Time the first /recommendations on an open connection (only the service's own cold
    path: httpx's ~1 ms per request is in every figure here, as it is not in wrk's), the
    `after` requests that follow, then `pauses` requests of each route after `pause` s."""
    with httpx.Client(base_url=server.base, timeout=60) as client:
        client.get(REFERENCE_PATH).raise_for_status()
        paths = [f"/recommendations/{user}" for user in random.choices(users, k=1 + after)]
        timed = [_get(client, path) for path in paths]
        version = timed[-1][1].json()["model_version"]
        reference = [_get(client, REFERENCE_PATH)[0] for _ in range(after)]
        after_pause, reference_after_pause = [], []
        for user in random.choices(users, k=pauses):
            time.sleep(pause)
            after_pause.append(_get(client, f"/recommendations/{user}")[0])
            time.sleep(pause)
            reference_after_pause.append(_get(client, REFERENCE_PATH)[0])
    return ColdPath(
        version=version,
        first_ms=timed[0][0],
        next_p50_ms=statistics.median(ms for ms, _ in timed[1:]),
        after_pause_ms=statistics.median(after_pause),
        reference_next_p50_ms=statistics.median(reference),
        reference_after_pause_ms=statistics.median(reference_after_pause),
    )


def _get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response


def describe(entry: dict) -> str:
    """The bench's line about the cold path, from its JSON entry."""
    ratio = entry["first_request_vs_p50"]
    return (
        f"first /recommendations after start: {entry['first_request_ms']:.2f} ms"
        + (f" ({ratio:.2f}x wrk's steady p50 at the lowest concurrency)" if ratio else "")
        + f"; {entry['first_request_vs_next_p50']:.2f}x the p50 of the next requests on the"
        f" same client ({entry['first_request_next_p50_ms']:.2f} ms)."
        f" On the warm server, a request after a pause: {entry['after_pause_ms']:.2f} ms"
        f" (the first is {entry['first_request_vs_after_pause']:.2f}x of it); the bare"
        f" reference route after a pause: {entry['reference_after_pause_vs_next_p50']:.2f}x"
        " its own p50"
    )
