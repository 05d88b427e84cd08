"""The second stage: re-order each request's retrieved candidates, as numpy.

The ranker's relevance score is a dot product of a per-user vector (from the one
query-side TensorFlow call of the micro-batch) with per-item vectors computed at export,
so ranking 100 candidates is a gather and a batched matrix product. Only a rating blend
(a part that truly crosses user and item) calls TensorFlow again, on the candidates only.
"""

import numpy as np

from app.candidates import Candidates
from app.version import Ranking


def rank(
    ranking: Ranking, users: dict[str, np.ndarray], candidates: list[Candidates], ks: list[int]
) -> list[Candidates]:
    """Per request: its candidates ordered by the ranker's score, best first, top k.

    `users` holds the query signature's outputs for the batch, one row per request.
    """
    counts = np.array([len(rows) for rows, _ in candidates])
    width = int(counts.max(initial=0))
    if width == 0:
        return [(rows, scores) for rows, scores in candidates]
    valid = np.arange(width)[None, :] < counts[:, None]
    rows = np.zeros((len(candidates), width), dtype=np.int64)
    rows[valid] = np.concatenate([r for r, _ in candidates])
    items = ranking.item_vectors[rows]  # [requests, width, dim]
    scores = np.einsum("rwd,rd->rw", items, users["ranking"])
    if ranking.rating_blend:
        scores[valid] += ranking.rating_blend * (
            _ratings(ranking, users, rows, valid) - ranking.rating_mean
        )
    scores = np.where(valid, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = []
    for i, k in enumerate(ks):
        top = order[i, : min(k, counts[i])]
        ranked.append((rows[i, top], scores[i, top]))
    return ranked


def _ratings(
    ranking: Ranking, users: dict[str, np.ndarray], rows: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """The rating head on the valid (user, candidate) pairs only, in one call."""
    assert ranking.rating_items is not None
    user_of_pair = np.nonzero(valid)[0]
    halves = {
        "rating_user": users["rating_user"][user_of_pair],
        "rating_item": np.asarray(ranking.rating_items[rows[valid]]),
    }
    return ranking.rating_fn(halves)["rating"]
