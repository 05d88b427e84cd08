"""Ranking metrics over a full catalog ranking (no sampled negatives).

`ranks[u]` is the 0-based position of user u's held-out item among all items the user
had not seen, so HR@K = mean(rank < K) and NDCG@K = mean(1 / log2(rank + 2)) for hits.
A method that returns a finite list (the served top-100) gives np.inf, or any rank past
the list's end, for a target it did not return: every metric here treats it as a miss.
"""

from collections.abc import Iterable, Sequence

import numpy as np


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """[rows, k] column indices of each row's k highest scores, best first (ties in
    column order when k covers every column). A partial sort: cheap on wide rows."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((len(scores), 0), dtype=np.int64)
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


def target_ranks(scores: np.ndarray, targets: np.ndarray, seen: list[np.ndarray]) -> np.ndarray:
    """scores [users, items]; targets [users] column indices; seen: per-user column indices.

    Seen items are excluded from the ranking; ties count against the target (pessimistic),
    so a constant scorer cannot look good.
    """
    masked = scores.astype(np.float64, copy=True)
    for row, columns in enumerate(seen):
        masked[row, columns] = -np.inf
    target_scores = masked[np.arange(len(targets)), targets]
    better_or_equal = (masked >= target_scores[:, None]).sum(axis=1)
    return better_or_equal - 1


def hit_rate(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))


def mrr(ranks: np.ndarray, cutoff: int | None = None) -> float:
    """Mean reciprocal rank, mean(1 / (rank + 1)); with a cutoff, ranks >= cutoff give 0."""
    if not len(ranks):
        return 0.0
    ranks = np.asarray(ranks, dtype=np.float64)
    reciprocal = 1.0 / (ranks + 1.0)  # np.inf -> 0
    if cutoff is not None:
        reciprocal = np.where(ranks < cutoff, reciprocal, 0.0)
    return float(np.mean(reciprocal))


def hr_curve(ranks: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """HR@k for every k in ks, in one sort instead of one pass per k."""
    if not len(ranks):
        return np.zeros(len(ks))
    ordered = np.sort(np.asarray(ranks, dtype=np.float64))
    # side="left" counts ranks strictly below k, the same test as hit_rate.
    below = np.searchsorted(ordered, np.asarray(ks, dtype=np.float64), side="left")
    return below / len(ordered)


def coverage(top_lists: Iterable[Iterable], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one user's top list.

    Items may be ids or column indices; a popularity list that shows everyone the same ten
    items scores about 10 / catalog_size, so low values flag a method with no personalisation.
    """
    if catalog_size <= 0:
        return 0.0
    distinct = {item for items in top_lists for item in np.asarray(items).tolist()}
    return len(distinct) / catalog_size


def _rated(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    truth = np.asarray(truth, dtype=np.float64)  # None -> NaN
    pred = np.asarray(pred, dtype=np.float64)
    keep = ~np.isnan(truth)
    return pred[keep] - truth[keep]


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error over the users whose truth is known (NaN / None skipped).

    NaN when no truth is known: there is nothing to measure, and 0 would read as perfect.
    """
    errors = _rated(pred, truth)
    return float(np.sqrt(np.mean(errors**2))) if len(errors) else float("nan")


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over the users whose truth is known; NaN when none is."""
    errors = _rated(pred, truth)
    return float(np.mean(np.abs(errors))) if len(errors) else float("nan")


MRR_CUTOFF = 100


def summarize(ranks: np.ndarray, cutoffs: tuple[int, ...]) -> dict[str, float]:
    """HR at each cutoff, NDCG@10, and "mrr", which is MRR@100.

    MRR is cut at 100 because the service returns a top-100 list: a full-ranking method
    would otherwise earn credit (1/500, ...) for targets no served list can contain, and
    its MRR would not be comparable with the served pipeline's. Past rank 100 a full MRR
    adds under 0.01 per user anyway.
    """
    result = {f"hr@{k}": hit_rate(ranks, k) for k in cutoffs}
    result["ndcg@10"] = ndcg(ranks, 10)
    result["mrr"] = mrr(ranks, MRR_CUTOFF)
    return result


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k neighbours the approximate search also returned."""
    if not len(exact):
        return 1.0
    hits = [len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact, strict=True)]
    return float(np.mean(hits))
