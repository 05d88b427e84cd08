"""The second stage: the exported ranker re-orders each request's retrieved candidates.

All pairs of a batch of requests go through the SavedModel in one call, in the worker
thread that already ran retrieval.
"""

import numpy as np

from app.artifacts import ModelVersion
from app.inputs import Hit, call_model


def rank(
    version: ModelVersion,
    users: dict[str, np.ndarray],
    candidates: list[list[Hit]],
    ks: list[int],
) -> list[list[Hit]]:
    """Per request: its candidates ordered by the ranker's score, best first, top k.

    `users` holds the requests' query-side inputs (`profile_columns`, one row per request),
    the same tensors the query tower already ran on.
    """
    counts = [len(c) for c in candidates]
    if not sum(counts):
        return [[] for _ in candidates]
    pairs = {name: np.repeat(values, counts, axis=0) for name, values in users.items()}
    items = [hit.item_id for hits in candidates for hit in hits]
    for name in version.manifest["feature_spec"]["candidate_features"]:
        pairs[name] = np.array([version.candidate_features[i][name] for i in items], dtype=object)
    scores = call_model(version.ranker_fn, pairs)["score"]
    ranked, start = [], 0
    for hits, k in zip(candidates, ks, strict=True):
        block = scores[start : start + len(hits)]
        order = np.argsort(-block, kind="stable")[:k]
        ranked.append([Hit(item_id=hits[i].item_id, score=float(block[i])) for i in order])
        start += len(hits)
    return ranked
