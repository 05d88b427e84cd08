"""`recsys bench index`: the export's ScaNN index over a synthetic catalog at scale,
against exact numpy search measured in the same run.

The catalog is clustered and low-rank like a trained tower's output (training/bench/
synthetic.py); the index is built by `training.export.build_index`, the training job's
own code, so the figures are those of what ships.
"""

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from training.bench.synthetic import Shape, structure, synthetic_items, synthetic_queries
from training.config import IndexConfig
from training.metrics import recall_at_k

TARGET_RECALL, TARGET_SPEEDUP = 0.95, 50.0
WARMUP, MIN_BATCHES = 20, 20  # untimed searches first; batched searches timed at least
SWEEP_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.25)  # shares of the leaves also searched


@dataclass(frozen=True)
class Plan:
    items: int = 1_000_000
    dim: int = 64
    queries: int = 1000
    k: int = 10
    batch: int = 256
    seed: int = 0
    index: IndexConfig = field(default_factory=IndexConfig)
    shape: Shape = Shape()


def run_bench(plan: Plan, console: Console) -> dict:
    """Generate, build as the export does, time ScaNN and numpy on the same queries;
    print the tables and return every figure."""
    report: dict = {
        "machine": _machine(),
        "plan": {**asdict(plan), "index": plan.index.model_dump()},
    }
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating the catalog", total=plan.items)
        started, st = time.perf_counter(), structure(plan.dim, plan.seed, plan.shape)
        items, _ = synthetic_items(
            st, plan.items, plan.seed + 1, lambda n: progress.advance(task, n)
        )
        queries = synthetic_queries(st, plan.queries, plan.seed + 2)
        # Tuned on queries of their own (as the export tunes on training users): the
        # timed queries are never the ones the search was tuned for.
        tuning = synthetic_queries(st, plan.queries, plan.seed + 3)
        report["catalog"] = _catalog(items, plan, time.perf_counter() - started)
        progress.add_task("building the index (training.export.build_index)", total=None)
        searcher, report["index"] = build(items, plan, tuning)
        task = progress.add_task("numpy brute force, one query at a time", total=plan.queries)
        exact, brute = brute_force(items, queries, plan.k, lambda: progress.advance(task))
        progress.add_task("ScaNN: single, batched, other numbers of leaves", total=None)
        report["scann"] = _scann(searcher, queries, exact, plan, report["index"])
        report["leaves_sweep"] = _sweep(searcher, queries, exact, report["index"], brute)
    report["brute_force"] = {**_latency(brute), "recall": recall_at_k(exact, exact)}
    report["speedup"] = report["brute_force"]["p50_ms"] / report["scann"]["p50_ms"]
    met = report["scann"]["recall"] >= TARGET_RECALL and report["speedup"] >= TARGET_SPEEDUP
    report["targets"] = {"recall": TARGET_RECALL, "speedup": TARGET_SPEEDUP, "met": bool(met)}
    report["machine"]["load_after"] = os.getloadavg()[0]
    print_tables(console, report)
    return report


def build(items: np.ndarray, plan: Plan, tuning: np.ndarray | None = None) -> tuple[Any, dict]:
    """`build_index` timed (its tuning of the leaves searched included), with the resident
    memory it added (held after the build, and at its peak during it), and its size
    serialised as the export writes it."""
    from training.export import build_index  # imports TensorFlow: before the baseline

    before, peak_known = _status_kib("VmRSS"), _reset_peak()
    started = time.perf_counter()
    searcher: Any
    searcher, info = build_index(items, plan.index, k=plan.k, queries=tuning)
    seconds = time.perf_counter() - started
    held, peak = _status_kib("VmRSS"), _status_kib("VmHWM")
    with tempfile.TemporaryDirectory(prefix="recsys-bench-index-") as tmp:
        searcher.serialize(tmp, relative_path=True)  # as training/pipeline.py exports it
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    return searcher, {
        **info,
        "build_s": seconds,
        "size_mb": size / 1e6,
        "rss_held_mb": (held - before) / 1024,
        "rss_peak_mb": (peak - before) / 1024 if peak_known else None,
    }


def brute_force(
    items: np.ndarray, queries: np.ndarray, k: int, advance: Callable[[], object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k rows per query, best first, and each query's seconds (one score vector
    in memory at a time). Timed: `items @ q` and the argpartition of its top k."""
    found, seconds = np.empty((len(queries), k), np.int64), np.empty(len(queries))
    for i, query in enumerate(queries):
        started = time.perf_counter()
        scores = items @ query
        top = np.argpartition(scores, -k)[-k:]
        seconds[i] = time.perf_counter() - started
        found[i] = top[np.argsort(-scores[top], kind="stable")]
        if advance:
            advance()
    return found, seconds


def _scann(searcher: Any, queries: np.ndarray, exact: np.ndarray, plan: Plan, info: dict) -> dict:
    """Searched as the app searches the version: over the leaves its manifest names."""
    leaves = {"leaves_to_search": info["leaves_to_search"]} if "leaves_to_search" in info else {}
    single, found = _single(searcher, queries, plan.k, **leaves)
    batches, found_batched = _batched(searcher, queries, plan.k, plan.batch, **leaves)
    batched = {"batch_" + key: value for key, value in _latency(batches).items()}
    return {
        **_latency(single),
        "recall": recall_at_k(found, exact),
        **batched,
        "batched_per_query_ms": float(batches.sum() * 1e3 / (len(batches) * plan.batch)),
        "batched_recall": recall_at_k(found_batched, exact),
    }


def _single(searcher: Any, queries: np.ndarray, k: int, **options: int) -> tuple:
    for query in queries[:WARMUP]:
        searcher.search(query, final_num_neighbors=k, **options)
    found, seconds = np.full((len(queries), k), -1, np.int64), np.empty(len(queries))
    for i, query in enumerate(queries):
        started = time.perf_counter()
        rows, _ = searcher.search(query, final_num_neighbors=k, **options)
        seconds[i] = time.perf_counter() - started
        found[i, : len(rows)] = rows
    return seconds, found


def _batched(searcher: Any, queries: np.ndarray, k: int, batch: int, **options: int) -> tuple:
    """Batches of `batch` queries, cycling through them until every query was searched
    and at least MIN_BATCHES batches were timed."""
    searcher.search_batched(queries[:batch], final_num_neighbors=k, **options)
    count = max(MIN_BATCHES, -(-len(queries) // batch))
    found, seconds = np.full((len(queries), k), -1, np.int64), np.empty(count)
    for b in range(count):
        take = (b * batch + np.arange(batch)) % len(queries)
        started = time.perf_counter()
        rows, _ = searcher.search_batched(queries[take], final_num_neighbors=k, **options)
        seconds[b] = time.perf_counter() - started
        found[take, : rows.shape[1]] = rows
    return seconds, found


def _sweep(
    searcher: Any, queries: np.ndarray, exact: np.ndarray, info: dict, brute: np.ndarray
) -> list[dict]:
    """The same tree searched over other numbers of leaves (a query-time option): where
    recall stops growing and what the leaves cost. Empty for an index without a tree."""
    default: int | None = info.get("leaves_to_search")
    if default is None:
        return []
    counts = {max(1, round(info["num_leaves"] * f)) for f in SWEEP_FRACTIONS} | {default}
    rows = []
    for count in sorted(counts):
        seconds, found = _single(searcher, queries, exact.shape[1], leaves_to_search=count)
        latency = _latency(seconds)
        speedup = float(np.median(brute)) * 1e3 / latency["p50_ms"]
        recall = recall_at_k(found, exact)
        rows.append({"leaves_to_search": count, **latency, "recall": recall, "speedup": speedup})
    return rows


def _latency(seconds: np.ndarray) -> dict[str, float]:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return {"p50_ms": float(p50), "p99_ms": float(p99)}


def _catalog(items: np.ndarray, plan: Plan, seconds: float, sample: int = 20_000) -> dict:
    """How the catalog was made; the share of its variance in its top `rank` singular
    directions (over a sample of rows)."""
    rows = items[np.random.default_rng(plan.seed).choice(len(items), min(sample, len(items)))]
    power = np.linalg.svd(rows - rows.mean(0), compute_uv=False) ** 2
    top = float(power[: plan.shape.rank].sum() / power.sum())
    return {**asdict(plan.shape), "generate_s": seconds, "top_rank_variance": top}


def _machine() -> dict:
    from importlib.metadata import version

    cpus, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    return {"cpus": cpus, "load_before": load, "numpy": np.__version__, "scann": version("scann")}


def _status_kib(name: str) -> int:
    """A /proc/self/status memory figure (VmRSS: resident now, VmHWM: peak), in KiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{name}:\s+(\d+)", status, re.MULTILINE)[1])  # type: ignore[index]


def _reset_peak() -> bool:
    """Restart VmHWM from the current RSS (Linux 4.0+), so it measures the build alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def print_tables(console: Console, report: dict) -> None:
    plan, index, scann, brute = (report[k] for k in ("plan", "index", "scann", "brute_force"))
    table = Table(
        title=f"ScaNN ({index['mode']}) vs numpy brute force: {plan['items']:,} items x "
        f"{plan['dim']}, {plan['queries']:,} queries, k={plan['k']}"
    )
    for header in ("", "ScaNN", "numpy brute force"):
        table.add_column(header, justify="right" if header else "left")
    peak = "-" if index["rss_peak_mb"] is None else f"{index['rss_peak_mb']:.0f}"
    raw_mb = plan["items"] * plan["dim"] * 4 / 1e6
    for row in (
        ("build (s)", f"{index['build_s']:.1f}", "-"),
        ("size on disk (MB)", f"{index['size_mb']:.1f}", f"{raw_mb:.1f} (float32 rows)"),
        ("RSS held / peak in build (MB)", f"{index['rss_held_mb']:.0f} / {peak}", "-"),
        (f"recall@{plan['k']}", f"{scann['recall']:.4f}", f"{brute['recall']:.4f}"),
        ("single query p50 / p99 (ms)", _pair(scann, "", 3), _pair(brute, "", 2)),
        (f"batch of {plan['batch']} p50 / p99 (ms)", _pair(scann, "batch_", 2), "-"),
        ("batched, mean per query (ms)", f"{scann['batched_per_query_ms']:.4f}", "-"),
        ("speedup (single-query p50)", f"{report['speedup']:.1f}x", "1x"),
    ):
        table.add_row(*row)
    console.print(table)
    _print_sweep(console, report)


def _pair(figures: dict, prefix: str, digits: int) -> str:
    return f"{figures[prefix + 'p50_ms']:.{digits}f} / {figures[prefix + 'p99_ms']:.{digits}f}"


def _print_sweep(console: Console, report: dict) -> None:
    index, targets = report["index"], report["targets"]
    if report["leaves_sweep"]:
        table = Table(title=f"the same tree, other leaves searched (of {index['num_leaves']})")
        for header in ("leaves searched", f"recall@{report['plan']['k']}", "p50 / p99 ms", "x"):
            table.add_column(header, justify="right")
        for row in report["leaves_sweep"]:
            mark = " (served)" if row["leaves_to_search"] == index["leaves_to_search"] else ""
            count, recall = f"{row['leaves_to_search']}{mark}", f"{row['recall']:.4f}"
            table.add_row(count, recall, _pair(row, "", 3), f"{row['speedup']:.1f}x")
        console.print(table)
    settings = ", ".join(f"{k}={v}" for k, v in index.items() if not k.endswith(("_s", "_mb")))
    console.print(f"index: {settings}")
    recall, speedup = report["scann"]["recall"], report["speedup"]
    verdict = "[green]met[/green]" if targets["met"] else "[red]NOT met[/red]"
    console.print(
        f"targets: recall@{report['plan']['k']} {recall:.4f} (>= {targets['recall']}), "
        f"speedup {speedup:.1f}x (>= {targets['speedup']:.0f}x): {verdict}"
    )
