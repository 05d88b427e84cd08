"""Ranking metrics over a full catalog ranking (no sampled negatives).

`ranks[u]` is the 0-based position of user u's held-out item among all items the user
had not seen, so HR@K = mean(rank < K) and NDCG@K = mean(1 / log2(rank + 2)) for hits.
"""

import numpy as np


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


def summarize(ranks: np.ndarray, cutoffs: tuple[int, ...]) -> dict[str, float]:
    result = {f"hr@{k}": hit_rate(ranks, k) for k in cutoffs}
    result["ndcg@10"] = ndcg(ranks, 10)
    return result


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k neighbours the approximate search also returned."""
    if not len(exact):
        return 1.0
    hits = [len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact, strict=True)]
    return float(np.mean(hits))
