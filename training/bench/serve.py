"""`recsys bench serve`: the real app under uvicorn, driven by wrk, beside a reference route.

Every figure comes from one run: for each database the app is started as `recsys serve`
starts it, the first request after start is timed, then each endpoint is driven at each
concurrency, and so is the reference route (`/bench/reference`: a plain FastAPI route
returning a fixed 10-item list, no database, no model) in the same server, so each
endpoint's throughput can be quoted as a fraction of what the framework itself allows.
"""

import asyncio
import platform
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from app.db.engine import create_engine, safe_url
from app.db.tables import interactions
from app.settings import DatabaseSettings
from training.bench import coldpath
from training.bench.events import event_lines, forget_bench_events
from training.bench.server import Server, run_server
from training.bench.wrk import LoadResult, run_wrk

REFERENCE = "reference"
EVENTS = "events (POST)"
ENDPOINTS = {
    REFERENCE: coldpath.REFERENCE_PATH,
    "recommendations": "/recommendations/{user}",
    "recommendations?returnMetadata": "/recommendations/{user}?returnMetadata=true",
    "feature": "/feature/{user}",
    EVENTS: "POST /events",  # one event per request, for users of the benchmark's own
}


@dataclass(frozen=True)
class Plan:
    databases: list[str]
    artifacts_dir: Path
    workers: int = 1
    connections: tuple[int, ...] = (1, 32)
    seconds: float = 15.0
    warmup_seconds: float = 3.0
    sample_users: int = 1000
    wrk_threads: int = 1

    @property
    def total_seconds(self) -> float:
        per_database = len(ENDPOINTS) * (self.warmup_seconds + self.seconds * len(self.connections))
        return per_database * len(self.databases)


def run_bench(plan: Plan, console: Console) -> dict:
    """Measure every database in the plan; print a table per database; return all figures."""
    report: dict = {
        "machine": {
            "cpus": _cpus(),
            "python": platform.python_version(),
            "os": platform.platform(),
        },
        "plan": {
            "workers": plan.workers,
            "connections": list(plan.connections),
            "seconds": plan.seconds,
            "artifacts_dir": str(plan.artifacts_dir),
        },
        "databases": [],
    }
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=plan.total_seconds)
        for url in plan.databases:
            progress.update(task, description=f"benchmarking on {_backend(url)}")
            report["databases"].append(_bench_database(url, plan, progress, task))
    for entry in report["databases"]:
        print_table(console, entry)
    return report


def _bench_database(url: str, plan: Plan, *bar) -> dict:  # type: ignore[no-untyped-def]
    users = asyncio.run(sample_users(url, plan.sample_users))
    if not users:
        raise RuntimeError(f"{safe_url(url)} holds no interactions: load data first")
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        paths = {name: _paths_file(Path(tmp), name, users, url) for name in ENDPOINTS}
        env = {
            "RECSYS_DATABASE_URL": url,
            "RECSYS_ARTIFACTS_DIR": str(plan.artifacts_dir),
            "RECSYS_SERVING_REFERENCE_ROUTE": "true",
        }
        # The events are deleted once the server has stopped: requests wrk left in flight
        # are still answered (and stored) after it ends.
        try:
            with run_server(env, Path(tmp) / "server.log", workers=plan.workers) as server:
                cold = coldpath.measure(server, paths["recommendations"], paths[REFERENCE])
                for name in ENDPOINTS if plan.warmup_seconds else ():  # untimed
                    _drive(server, paths[name], max(plan.connections), plan.warmup_seconds, *bar)
                runs = []
                for connections in plan.connections:
                    for name in ENDPOINTS:
                        result = _drive(server, paths[name], connections, plan.seconds, *bar)
                        runs.append({"endpoint": name, **result.as_dict()})
        finally:
            forget_bench_events(url)
    _add_ratios(runs)
    steady = _find(runs, "recommendations", min(plan.connections))
    return {
        "database": safe_url(url),
        "backend": _backend(url),
        "model_version": cold.version,
        "known_users_sampled": len(users),
        "first_request_vs_p50": round(cold.first_ms / steady["p50_ms"], 2) if steady else None,
        **cold.as_dict(),
        "runs": runs,
    }


async def sample_users(url: str, n: int) -> list[str]:
    """Up to `n` random users that have interactions (known to the service)."""
    engine = create_engine(DatabaseSettings(url=url))
    stmt = (
        select(interactions.c.user_id)
        .group_by(interactions.c.user_id)
        .order_by(func.random())
        .limit(n)
    )
    try:
        async with engine.connect() as conn:
            return [row[0] for row in await conn.execute(stmt)]
    finally:
        await engine.dispose()


def _drive(server: Server, paths: Path, connections: int, seconds: float, progress, task):  # type: ignore[no-untyped-def]
    """run_wrk in a thread while the progress bar follows the clock."""
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = run_wrk(server.base, paths, connections=connections, seconds=seconds)
        except Exception as exc:  # re-raised below, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    shown, started = 0.0, time.monotonic()
    while thread.is_alive():
        thread.join(0.25)
        step = min(time.monotonic() - started, seconds) - shown
        progress.advance(task, step)
        shown += step
    progress.advance(task, seconds - shown)
    if "error" in box:
        raise box["error"]
    result: LoadResult = box["result"]
    return result


def _paths_file(folder: Path, name: str, users: list[str], url: str) -> Path:
    path = folder / (re.sub(r"\W+", "_", name) + ".paths")
    template = ENDPOINTS[name]
    lines = event_lines(url) if name == EVENTS else [template.format(user=u) for u in users]
    path.write_text("\n".join(lines) + "\n")
    return path


def _add_ratios(runs: list[dict]) -> None:
    for run in runs:
        reference = _find(runs, REFERENCE, run["connections"])
        rps = reference["requests_per_second"] if reference else 0
        run["vs_reference"] = round(run["requests_per_second"] / rps, 3) if rps else None


def _find(runs: list[dict], endpoint: str, connections: int) -> dict | None:
    return next(
        (r for r in runs if r["endpoint"] == endpoint and r["connections"] == connections), None
    )


def print_table(console: Console, entry: dict) -> None:
    table = Table(title=f"{entry['backend']}: {entry['database']} ({entry['model_version']})")
    for header in ("endpoint", "conns", "req/s", "x ref", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(header, justify="left" if header == "endpoint" else "right")
    for run in entry["runs"]:
        table.add_row(
            run["endpoint"],
            str(run["connections"]),
            f"{run['requests_per_second']:,.0f}",
            f"{run['vs_reference']:.2f}" if run["vs_reference"] is not None else "-",
            f"{run['p50_ms']:.2f}",
            f"{run['p95_ms']:.2f}",
            f"{run['p99_ms']:.2f}",
            str(run["errors"]),
        )
    console.print(table)
    console.print(coldpath.describe(entry))


def _backend(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
