"""The public serving core: one function turns a batch of requests into ranked lists.

The micro-batcher calls it for live traffic, `recsys evaluate` calls it to measure the
product as served, warm-up calls it before a version takes traffic. Per batch it makes
one query-side TensorFlow call, batched ScaNN searches, and numpy over the candidates.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from app.candidates import Candidates, retrieve, retrieve_filtered
from app.db.queries import UserProfile
from app.inputs import profile_columns
from app.ranking import rank
from app.version import ModelVersion


@dataclass(frozen=True)
class RecommendRequest:
    profile: UserProfile
    k: int
    exclude: Sequence[str] = field(default_factory=tuple)  # item ids never to return
    allowed: np.ndarray | None = None  # sorted index rows a business filter allows (None: all)


@dataclass(frozen=True)
class SimilarRequest:
    row: int  # the item's index row
    k: int
    exclude: Sequence[str] = field(default_factory=tuple)
    allowed: np.ndarray | None = None


@dataclass(frozen=True)
class Ranked:
    """One answer: index rows and their scores, best first (at most k)."""

    rows: np.ndarray
    scores: np.ndarray

    def item_ids(self, version: ModelVersion) -> list[str]:
        return version.item_ids[self.rows].tolist()

    def items_json(self, version: ModelVersion, with_metadata: bool) -> list[orjson.Fragment]:
        """The answered items as JSON (`ModelVersion.item_json`), as the response lists them."""
        pairs = zip(self.rows.tolist(), self.scores.tolist(), strict=True)
        return [version.item_json(row, score, with_metadata) for row, score in pairs]

    def entries(self, version: ModelVersion, with_metadata: bool) -> list[dict[str, Any]]:
        """The answered items, as the response lists them."""
        pairs = zip(self.rows.tolist(), self.scores.tolist(), strict=True)
        return [version.entry(row, score, with_metadata) for row, score in pairs]


def recommend_batch(version: ModelVersion, requests: Sequence[RecommendRequest]) -> list[Ranked]:
    """Ranked lists for a batch of requests on one version (runs in a worker thread)."""
    if not requests:
        return []
    users = version.query_fn(profile_columns(version, [r.profile for r in requests]))
    excluded = version.rows_each([r.exclude for r in requests])
    ks = [r.k for r in requests]
    if version.ranking is None:
        found = _retrieve(version, users["embedding"], ks, excluded, requests)
    else:
        depth = [max(k, version.ranking.candidates) for k in ks]
        candidates = _retrieve(version, users["embedding"], depth, excluded, requests)
        found = rank(version.ranking, users, candidates, ks)
    return [_ranked(c) for c in found]


def similar_batch(version: ModelVersion, requests: Sequence[SimilarRequest]) -> list[Ranked]:
    """Items like each request's item: its own vector searched in the index (itself and
    its exclusions left out), scored by similarity; no ranker (there is no user)."""
    if not requests or version.item_embeddings is None:
        return [_ranked((np.empty(0, np.int64), np.empty(0))) for _ in requests]
    queries = np.asarray(version.item_embeddings[[r.row for r in requests]], dtype=np.float32)
    excluded = [
        np.append(rows, r.row)
        for rows, r in zip(version.rows_each([r.exclude for r in requests]), requests, strict=True)
    ]
    found = _retrieve(version, queries, [r.k for r in requests], excluded, requests)
    return [_ranked(c) for c in found]


def _retrieve(version, queries, wanted, excluded, requests) -> list[Candidates]:  # type: ignore[no-untyped-def]
    """Unfiltered requests in one batched search; each filtered one on its own."""
    found: list[Candidates | None] = [None] * len(requests)
    plain = [i for i, r in enumerate(requests) if r.allowed is None]
    if plain:
        batch = retrieve(
            version, queries[plain], [wanted[i] for i in plain], [excluded[i] for i in plain]
        )
        for i, candidates in zip(plain, batch, strict=True):
            found[i] = candidates
    for i, r in enumerate(requests):
        if r.allowed is not None:
            found[i] = retrieve_filtered(version, queries[i], wanted[i], excluded[i], r.allowed)
    return found  # type: ignore[return-value]


def _ranked(candidates: Candidates) -> Ranked:
    rows, scores = candidates
    return Ranked(rows=rows, scores=scores.astype(np.float64))


def warm_up(version: ModelVersion, sizes: Sequence[int] = (1, 2, 8, 32)) -> None:
    """Run the whole request path before the version takes traffic, at a few batch sizes
    and at every search depth a request can need (each depth is its own ScaNN call shape),
    so TensorFlow's and ScaNN's first-call costs are not paid by a user."""
    history = [p["id"] for p in version.popular[: version.history_length]]
    profile = UserProfile(user_id="", history=history, history_ratings=[None] * len(history))
    for size in sizes:
        recommend_batch(version, [RecommendRequest(profile, 10, history)] * size)
    similar_batch(version, [SimilarRequest(0, 10)] * min(2, version.size))
    ids = version.item_ids.tolist()
    seen = 1
    while seen < min(len(ids), WARM_DEPTHS):
        recommend_batch(version, [RecommendRequest(profile, 10, ids[:seen])])
        seen *= 2


WARM_DEPTHS = 4096  # seen-list lengths warmed: powers of two up to this (max_seen_items)
