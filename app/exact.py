"""Exact top-k with numpy: a brute-force index's search, and the partial sort the exact
filtered search (app.candidates) takes its top k from.

A brute-force index (a small catalog) is scored whole over the vectors it holds: one
product for the batch, excluded rows masked to -inf before one partial sort, and no
search deeper than what is asked for (the same rows as ScaNN's brute force, which sorted
ever deeper lists for heavy users: ~5x the time per batch).
"""

import numpy as np

Candidates = tuple[np.ndarray, np.ndarray]  # index rows [n], scores [n], best first


def masked(
    items: np.ndarray, queries: np.ndarray, wanted: list[int], banned: np.ndarray
) -> list[Candidates]:
    """Exact: each query's `wanted` best rows over the whole catalog, `banned` (sorted
    codes query * size + row, as app.candidates makes them) scored -inf, so they sort
    last. Queries go in slices of at most MASKED_SCORES scores: memory stays bounded."""
    size, found = len(items), []
    step = max(1, MASKED_SCORES // max(size, 1))
    for start in range(0, len(queries), step):
        scores = np.asarray(queries[start : start + step], dtype=np.float32) @ items.T
        lo, hi = np.searchsorted(banned, [start * size, (start + step) * size])  # sorted
        scores.flat[banned[lo:hi] - start * size] = -np.inf  # C order: query * size + row
        found += best(scores, wanted[start : start + step])
    return found


def best(scores: np.ndarray, wanted: list[int]) -> list[Candidates]:
    """Per row of `scores`: its `wanted` highest columns, best first, without -inf ones
    (one partial sort for all rows)."""
    size = scores.shape[1]
    width = min(max(wanted, default=0), size)
    top = np.argpartition(scores, size - width, axis=1)[:, size - width :]
    kept = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-kept, axis=1, kind="stable")
    rows, kept = np.take_along_axis(top, order, axis=1), np.take_along_axis(kept, order, axis=1)
    real = np.isfinite(kept).sum(axis=1).tolist()  # what the mask left
    ends = [min(n, left) for n, left in zip(wanted, real, strict=True)]
    return [(rows[i, :end].astype(np.int64), kept[i, :end]) for i, end in enumerate(ends)]


MASKED_SCORES = 4_000_000  # scores (float32) one exact product holds: 16 MB
