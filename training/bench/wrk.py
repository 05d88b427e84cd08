"""Drive a server with wrk (a C load generator in its own process) over a list of paths."""

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_paths.lua")


class LoadGeneratorError(RuntimeError):
    """wrk is missing or failed; the message says how to get it or what it printed."""


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, latency percentiles (ms) and every kind of error."""

    connections: int
    seconds: float
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors + timeouts + non-2xx answers
    non_2xx: int

    def as_dict(self) -> dict:
        return asdict(self)


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise LoadGeneratorError("wrk not found: install it (apt-get install -y wrk)")
    return found


def run_wrk(
    base: str,
    paths: Path,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    polite: bool = False,
    stop_after: int | None = None,
) -> LoadResult:
    """GET random lines of `paths` against `base` for `seconds` over `connections`;
    `polite`: a client answered 503 waits its Retry-After (1 s) before asking again;
    `stop_after`: each wrk thread stops after that many answers (the run still lasts
    `seconds`, so a slower answer is missing from the result rather than cut short)."""
    command = [
        find_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        base,
        "--",
        str(paths),
        *(["retry-after"] if polite else []),
        *([f"stop-after={stop_after}"] if stop_after else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    summary = _summary_line(result.stdout)
    if result.returncode != 0 or summary is None:
        raise LoadGeneratorError(f"wrk failed ({result.returncode}): {result.stderr[-2000:]}")
    return _result(summary, connections)


def _summary_line(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def _result(raw: dict, connections: int) -> LoadResult:
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors"))
    return LoadResult(
        connections=connections,
        seconds=round(seconds, 2),
        requests=raw["requests"],
        requests_per_second=round(raw["requests"] / seconds, 1),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=socket_errors + raw["timeouts"] + raw["non_2xx"],
        non_2xx=raw["non_2xx"],
    )
