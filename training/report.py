"""The comparison report: one entry per method, as a table, a JSON file and an HR@K chart.

A report is a plain dict, {"protocol": {...}, "methods": {name: entry}}. "protocol" is
free-form; the chart's title uses its "dataset" and "description" keys when present.
Each entry comes from `method_metrics`, so a score-matrix baseline and the served
pipeline (which yields top-100 lists) produce the same keys:

    hr@10, hr@50, hr@100, ndcg@10, mrr (MRR@100), coverage@10, rmse, mae: float or None
    hr_curve: 100 floats, hr_curve[k - 1] = HR@k for k = 1..100, or None
    users: how many held-out users the entry was measured on

None means "this method does not measure that" (a ranker has no RMSE, SVD no HR).
"""

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from training.dataset import Split
from training.metrics import (
    MRR_CUTOFF,
    best_first,
    coverage,
    hit_rate,
    hr_curve,
    mae,
    mrr,
    ndcg,
    rmse,
    target_ranks,
)

CURVE_KS = range(1, 101)
# (key, header, lower is better)
COLUMNS = [
    ("hr@10", "HR@10", False),
    ("hr@50", "HR@50", False),
    ("hr@100", "HR@100", False),
    ("ndcg@10", "NDCG@10", False),
    ("mrr", "MRR", False),
    ("coverage@10", "Coverage@10", False),
    ("rmse", "RMSE", True),
    ("mae", "MAE", True),
]


def ranks_from_lists(lists: Sequence[Sequence], targets: Sequence) -> np.ndarray:
    """0-based position of each target in its user's list; np.inf when it is not there."""
    ranks = np.full(len(targets), np.inf)
    for row, (items, target) in enumerate(zip(lists, targets, strict=True)):
        for position, item in enumerate(items):
            if item == target:
                ranks[row] = position
                break
    return ranks


def method_metrics(
    ranks: np.ndarray | None,
    top10_lists: Sequence[Sequence] | None,
    catalog_size: int,
    rating_pred: np.ndarray | None = None,
    rating_truth: Sequence[float | None] | None = None,
) -> dict:
    """One method's report entry; pass ranks=None for a method that only predicts ratings."""
    entry: dict = {key: None for key, _, _ in COLUMNS}
    entry["hr_curve"] = None
    if ranks is not None:
        ranks = np.asarray(ranks, dtype=np.float64)
        entry |= {f"hr@{k}": hit_rate(ranks, k) for k in (10, 50, 100)}
        entry["ndcg@10"] = ndcg(ranks, 10)
        entry["mrr"] = mrr(ranks, MRR_CUTOFF)
        entry["hr_curve"] = hr_curve(ranks, CURVE_KS).tolist()
        entry["users"] = len(ranks)
    if top10_lists is not None:
        entry["coverage@10"] = coverage(top10_lists, catalog_size)
    if rating_pred is not None and rating_truth is not None:
        entry["rmse"] = _finite_or_none(rmse(rating_pred, rating_truth))
        entry["mae"] = _finite_or_none(mae(rating_pred, rating_truth))
        entry.setdefault("users", len(rating_pred))
    return entry


def score_matrix_metrics(scores: np.ndarray, split: Split, item_ids: list[str]) -> dict:
    """The entry of a method that scores the whole catalog: [test users, items] scores.

    Ranks use target_ranks (seen items excluded, ties against the target); the top-10
    lists exclude seen items too, as the served lists do.
    """
    return score_rows_metrics(lambda start, stop: scores[start:stop], split, item_ids)


def score_rows_metrics(
    score_rows: Callable[[int, int], np.ndarray],
    split: Split,
    item_ids: list[str],
    cells: int = 1 << 24,
) -> dict:
    """score_matrix_metrics with the matrix produced a chunk of users at a time
    (`score_rows(start, stop)` -> [stop - start, items]), about `cells` scores per chunk:
    a million-item catalog never holds more than that in memory."""
    chunk = max(1, cells // max(1, len(item_ids)))
    targets = split.test_item_rows  # the catalog's item rows are the score columns
    ranks, tops = [np.empty(0, np.int64)], [np.empty((0, min(10, len(item_ids))), np.int64)]
    for start in range(0, len(targets), chunk):
        stop = min(start + chunk, len(targets))
        scores = score_rows(start, stop)
        seen = [split.seen_rows(i) for i in range(start, stop)]
        ranks.append(target_ranks(scores, targets[start:stop], seen))
        tops.append(top_columns(scores, seen, 10))
    return method_metrics(np.concatenate(ranks), np.concatenate(tops), len(item_ids))


def top_columns(scores: np.ndarray, seen: list[np.ndarray], k: int) -> np.ndarray:
    """[users, k] column indices of each user's k best unseen items, best first."""
    masked = scores.astype(np.float64, copy=True)
    for row, columns in enumerate(seen):
        masked[row, columns] = -np.inf
    return best_first(masked, k)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _best(report: dict, key: str, lower_is_better: bool) -> float | None:
    values = [m[key] for m in report["methods"].values() if m.get(key) is not None]
    if not values:
        return None
    return min(values) if lower_is_better else max(values)


def print_table(console: Console, report: dict) -> None:
    """One row per method; "—" where a method has no value; the best of each column bold."""
    table = Table(title=_title(report))
    table.add_column("method")
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    best = {key: _best(report, key, lower) for key, _, lower in COLUMNS}
    for name, entry in report["methods"].items():
        cells = []
        for key, _, _ in COLUMNS:
            value = entry.get(key)
            if value is None:
                cells.append("—")
            else:
                cells.append(f"[bold]{value:.4f}[/bold]" if value == best[key] else f"{value:.4f}")
        table.add_row(name, *cells)
    console.print(table)


def write_json(report: dict, path: Path) -> Path:
    """Strict JSON (NaN written as null, numpy values as plain numbers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(report), indent=2, allow_nan=False)
    path.write_text(text + "\n")
    return path


def _plain(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_chart(report: dict, path: Path) -> Path:
    """HR@K for K = 1..100, one line per method that ranks, saved as a PNG."""
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, entry in report["methods"].items():
        if entry.get("hr_curve"):
            axes.plot(list(CURVE_KS), entry["hr_curve"], label=name)
    axes.set_xlabel("K (list length)")
    axes.set_ylabel("HR@K")
    axes.set_xlim(1, CURVE_KS[-1])
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(loc="upper left")
    axes.set_title(_title(report), fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _title(report: dict) -> str:
    protocol = report.get("protocol", {})
    parts = [str(protocol[k]) for k in ("dataset", "description") if protocol.get(k)]
    return " — ".join(parts) or "hold-out evaluation"
