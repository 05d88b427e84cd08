"""Admission control: a bound on the requests the model path holds at once.

Past the bound a request is refused at once (503 with Retry-After) instead of joining a
queue whose wait grows without limit: the requests that are admitted keep a bounded
latency, and a client (or nginx's next upstream) can go elsewhere or come back.
"""

import contextlib
from collections.abc import Iterator

from app import metrics


class Overloaded(Exception):
    """More requests in flight than the service admits."""


class Admission:
    def __init__(self, limit: int):
        self.limit, self.in_flight = limit, 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        # One event loop: no lock needed between the check and the increment.
        if self.in_flight >= self.limit:
            metrics.REJECTED.inc()
            raise Overloaded(f"more than {self.limit} requests in flight")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
