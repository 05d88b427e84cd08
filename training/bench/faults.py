"""`recsys bench outage` and `recsys bench overload`: the figures behind the fault
handling, each beside its own baseline from the same run, load driven by wrk (a C load
generator in its own process, so the client is not what is measured).

outage:   the native stack (two instances behind nginx, a throwaway PostgreSQL). wrk
          drives /recommendations through nginx for the steady p99, then without a
          pause while the database is paused (SIGSTOP) or stopped for OUTAGE seconds:
          its first second, excused, and the rest; after recovery, how long until a
          known user is personalised again.
overload: one instance with no bound, then past its in-flight bound with clients that
          retry at once and with clients that wait Retry-After: refusals, and the
          latency of the requests it admitted, from its own histograms (wrk sees only
          the mix).
"""

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from training.bench.nginx import Limits
from training.bench.serve import sample_users
from training.bench.server import run_server
from training.bench.stack import native_stack
from training.bench.wrk import run_wrk

OUTAGE_SECONDS = 10.0
ROUTE = "/recommendations/{user_id}"


@dataclass(frozen=True)
class OutagePlan:
    movielens_dir: Path | None
    artifacts_dir: Path
    clients: int = 24
    steady_seconds: float = 10.0


def run_outage_bench(plan: OutagePlan, say: Callable[[str], None]) -> dict:
    with tempfile.TemporaryDirectory(prefix="recsys-outage-") as tmp:
        paths = _paths(Path(tmp), [str(u) for u in range(1, 944)])  # the stack loads ML-100K
        say("starting the stack (throwaway PostgreSQL, 2 instances, nginx)")
        unlimited = Limits(rate="100000r/s", burst=100000)
        with native_stack(
            Path(tmp, "stack"),
            movielens_dir=plan.movielens_dir,
            artifacts=plan.artifacts_dir,
            limits=unlimited,
        ) as stack:
            db = stack.cluster
            faults = {"paused": (db.pause, db.resume), "stopped": (db.stop, db.start)}
            report = {}
            for name, (fault, recover) in faults.items():
                say(f"{name}: steady {plan.steady_seconds:.0f}s, then {OUTAGE_SECONDS:.0f}s out")
                report[name] = _one_outage(stack.base, paths, plan, fault, recover)
            return report


def _one_outage(base: str, paths: Path, plan: OutagePlan, fault, recover) -> dict:  # type: ignore[no-untyped-def]
    """Load never stops: wrk runs up to the fault, through its first (excused) second,
    then through the rest of the outage, each run starting as the one before ends."""
    wrk = {"connections": plan.clients}
    steady = run_wrk(base, paths, seconds=plan.steady_seconds, **wrk)
    fault()
    down = time.monotonic()
    first = run_wrk(base, paths, seconds=1, **wrk)
    during = run_wrk(base, paths, seconds=OUTAGE_SECONDS - 2, **wrk)
    time.sleep(max(0.0, down + OUTAGE_SECONDS - time.monotonic()))
    back = time.monotonic()
    recover()
    return {
        "steady": steady.as_dict(),
        "first_second": first.as_dict(),
        "outage": during.as_dict(),
        "limit_p99_ms": steady.p99_ms + 50,
        "personalised_after_s": _until_personalised(base, back),
    }


def _until_personalised(base: str, back: float, timeout: float = 30.0) -> float:
    """Seconds from recovery to the first personalised answer for a known user (-1: none)."""
    while time.monotonic() < back + timeout:
        answer = httpx.get(f"{base}/recommendations/1", timeout=5)
        if answer.status_code == 200 and not answer.json()["fallback"]:
            return round(time.monotonic() - back, 2)
        time.sleep(0.05)
    return -1.0


def _paths(folder: Path, users: list[str]) -> Path:
    """The file wrk picks request paths from: one user's recommendations per line."""
    paths = folder / "users.paths"
    paths.write_text("".join(f"/recommendations/{user}\n" for user in users))
    return paths


@dataclass(frozen=True)
class OverloadPlan:
    database_url: str  # the served catalog's users are sampled from it
    bound: int = 32  # RECSYS_SERVING_MAX_IN_FLIGHT for the bounded run
    clients: int = 256
    seconds: float = 10.0


def run_overload_bench(plan: OverloadPlan, say: Callable[[str], None]) -> dict:
    """The same load against the instance with no bound, then with the bound, once with
    clients that retry at once (the worst case) and once with clients that wait the
    Retry-After they are given (as nginx's limit and well-behaved clients do)."""
    runs = {
        "unbounded": (1_000_000, [False]),
        "bounded": (plan.bound, [False, True]),
    }
    report = {}
    with tempfile.TemporaryDirectory(prefix="recsys-overload-") as tmp:
        paths = _paths(Path(tmp), asyncio.run(sample_users(plan.database_url, 1000)))
        for name, (bound, behaviours) in runs.items():
            env = {"RECSYS_SERVING_MAX_IN_FLIGHT": str(bound)}
            with run_server(env, Path(tmp, f"{name}.log")) as server:
                run_wrk(server.base, paths, connections=plan.clients, seconds=3)  # warm
                for polite in behaviours:
                    label = f"{name}, clients {'wait Retry-After' if polite else 'retry at once'}"
                    say(f"{label}: {plan.clients} connections, at most {bound} in flight")
                    report[label] = _overload_run(server.base, paths, plan, polite)
    return report


def _overload_run(base: str, paths: Path, plan: OverloadPlan, polite: bool) -> dict:
    before = httpx.get(f"{base}/metrics").text
    load = run_wrk(base, paths, connections=plan.clients, seconds=plan.seconds, polite=polite)
    after = httpx.get(f"{base}/metrics").text
    return {
        "wrk": load.as_dict(),
        "admitted": _served(before, after, "200"),
        "refused": _served(before, after, "503"),
    }


def _served(before: str, after: str, status: str) -> dict:
    """Requests of one status during the run and their p50/p99 (ms) from the app's own
    latency histogram (linear within a bucket, as Prometheus' histogram_quantile)."""
    old = _buckets(before, status)
    counts = {b: c - old.get(b, 0) for b, c in _buckets(after, status).items()}
    total = counts.get(float("inf"), 0)
    return {"requests": int(total), **{f"p{q}_ms": _quantile(counts, q / 100) for q in (50, 99)}}


def _buckets(text: str, status: str) -> dict[float, float]:
    wanted = {"route": ROUTE, "method": "GET", "status": status}
    found: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k != "le"}
            if s.name == "recsys_http_request_duration_seconds_bucket" and labels == wanted:
                found[float(s.labels["le"])] = s.value
    return found


def _quantile(cumulative: dict[float, float], q: float) -> float:
    bounds = sorted(cumulative)
    total = cumulative.get(float("inf"), 0)
    if not total:
        return 0.0
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if cumulative[bound] >= rank:
            if bound == float("inf"):
                return round(lower * 1000, 2)
            share = (rank - below) / max(cumulative[bound] - below, 1e-9)
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, cumulative[bound]
    return round(lower * 1000, 2)


def print_outage(console: Console, report: dict) -> None:
    table = Table(title="database outage through nginx (wrk, 24 connections)")
    for column in ("fault", "phase", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"):
        table.add_column(column, justify="right")
    for fault, entry in report.items():
        for phase in ("steady", "first_second", "outage"):
            run = entry[phase]
            socket_errors = run["errors"] - run["non_2xx"]
            table.add_row(
                fault, phase, f"{run['requests_per_second']:,.0f}", f"{run['p50_ms']:.1f}",
                f"{run['p99_ms']:.1f}", str(run["non_2xx"]), str(socket_errors),
            )  # fmt: skip
    console.print(table)
    for fault, entry in report.items():
        within = entry["outage"]["p99_ms"] <= entry["limit_p99_ms"]
        console.print(
            f"{fault}: outage p99 {entry['outage']['p99_ms']:.1f} ms against a limit of "
            f"{entry['limit_p99_ms']:.1f} ms (steady + 50): {'within' if within else 'OVER'}; "
            f"personalised again {entry['personalised_after_s']:.2f} s after recovery"
        )


def print_overload(console: Console, report: dict) -> None:
    table = Table(title="past the in-flight bound (one instance, 256 connections)")
    for column in ("run", "answers/s", "wrk p99 ms", "admitted", "admitted p50/p99 ms",
                   "refused 503", "refused p99 ms"):  # fmt: skip
        table.add_column(column, justify="right")
    for name, entry in report.items():
        admitted, refused, wrk = entry["admitted"], entry["refused"], entry["wrk"]
        table.add_row(
            name, f"{wrk['requests_per_second']:,.0f}", f"{wrk['p99_ms']:.1f}",
            f"{admitted['requests']:,}", f"{admitted['p50_ms']:.1f} / {admitted['p99_ms']:.1f}",
            f"{refused['requests']:,}", f"{refused['p99_ms']:.1f}",
        )  # fmt: skip
    console.print(table)
