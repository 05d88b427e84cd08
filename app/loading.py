"""How the registry loads a version beside live traffic without slowing it down, and
frees the one it replaced."""

import contextlib
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def folder_stamp(folder: Path) -> tuple:
    """Each file's path, size and modification time: cheap, and changes with any rewrite."""
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                stat = os.stat(os.path.join(root, name))
                found.append((root, name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


# How a load shares the machine with the requests served meanwhile. Loading a version is
# Python holding the GIL, and every request passes the GIL between threads (event loop,
# database, model) many times; by default a waiting thread gets it only after 5 ms, so
# requests crawled while a version loaded. During a load beside traffic the GIL changes
# hands every 0.1 ms, the loading thread runs at the lowest CPU priority, and it pauses
# 1 ms after every 4 ms of work: slower loads (seconds, well within a poll interval) for
# requests that barely notice (`recsys bench swap` measures it; figures in the README).
LOAD_SWITCH_INTERVAL = 0.0001
LOADER_NICE = 19
LOAD_RUN_SECONDS, LOAD_REST_SECONDS = 0.004, 0.001


def lowest_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # per-thread niceness: Linux
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICE)


class Pacer:
    """A profile hook for the loading thread (sys.setprofile is per thread): after every
    `run` seconds of work it sleeps `rest`, leaving the GIL and a core to requests."""

    def __init__(self, run: float, rest: float):
        self.run, self.rest = run, rest
        self.calls, self.since = 0, time.perf_counter()

    def __call__(self, frame, event, arg) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls % 64 == 0 and time.perf_counter() - self.since > self.run:
            time.sleep(self.rest)
            self.since = time.perf_counter()


@contextlib.contextmanager
def loading(*, polite: bool) -> Iterator[None]:
    """While a version loads, no garbage collection runs: everything the load allocates
    is live, yet hundreds of thousands of new objects would trigger full collections,
    each a pause for every request in flight. `polite`: share the machine (above)."""
    enabled, interval = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    if polite:
        sys.setswitchinterval(min(interval, LOAD_SWITCH_INTERVAL))
        sys.setprofile(Pacer(LOAD_RUN_SECONDS, LOAD_REST_SECONDS))
    try:
        yield
    finally:
        sys.setprofile(None)
        sys.setswitchinterval(interval)
        if enabled:
            gc.enable()


def collect_all() -> None:
    """Free a replaced version: its model objects are cyclic, so only a collection frees
    them. The libraries are frozen out of it (app.main), so it costs the size of the
    versions, not of TensorFlow."""
    gc.collect()
