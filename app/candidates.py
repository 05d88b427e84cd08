"""The first stage: ScaNN search per micro-batch, seen items masked out by index row.

Each request searches as deep as it needs (what it asks for plus what it must skip),
rounded up to a power of two so requests of similar depth share one batched search; a
light user is never searched at the depth of the heaviest user of its batch.

A brute-force index (a small catalog) is exact, so it is scored whole with numpy
instead (app/exact.py).
"""

import math

import numpy as np

from app.exact import Candidates, best, masked
from app.version import ModelVersion


def retrieve(
    version: ModelVersion, queries: np.ndarray, wanted: list[int], excluded: list[np.ndarray]
) -> list[Candidates]:
    """Per query: its `wanted` best rows not in `excluded` (row arrays; repeats allowed)."""
    size = version.size
    banned = _encode(excluded, size)
    if version.exact and version.item_embeddings is not None:
        return masked(version.item_embeddings, queries, wanted, banned)
    counts = np.bincount(banned // size, minlength=len(queries)).tolist()
    depths = [_depth(size, w + c) for w, c in zip(wanted, counts, strict=True)]
    results: list[Candidates | None] = [None] * len(queries)
    for depth in sorted(set(depths)):
        members = np.array([i for i, d in enumerate(depths) if d == depth])
        rows, scores = _search_batched(version, queries[members], depth)
        keep = _keep_mask(rows, scores, members, banned, size)
        for position, i in enumerate(members.tolist()):
            results[i] = _first(rows[position], scores[position], keep[position], wanted[i])
    for i, (found, need) in enumerate(zip(results, wanted, strict=True)):
        if found is not None and len(found[0]) < min(need, size - counts[i]):
            # The partitions searched held too few unexcluded items: search them all.
            results[i] = _exhaustive(version, queries[i], need, i, banned)
    return [r for r in results if r is not None]


def _search_batched(version: ModelVersion, queries: np.ndarray, depth: int) -> Candidates:
    """One batched search, its queries split over the version's search threads."""
    depths = {
        "final_num_neighbors": depth,
        "pre_reorder_num_neighbors": reorder_depth(version, depth),
        "leaves_to_search": version.leaves_to_search,
    }
    threads = min(version.search_threads, len(queries))
    if threads <= 1:
        return version.searcher.search_batched(queries, **depths)  # type: ignore[no-any-return]
    share = -(-len(queries) // threads)  # queries per thread, rounded up
    return version.searcher.search_batched_parallel(queries, batch_size=share, **depths)  # type: ignore[no-any-return]


def _encode(excluded: list[np.ndarray], size: int) -> np.ndarray:
    """Every (query, row) to skip as query * size + row, sorted and unique: one array
    for the whole batch, so membership is one vectorised test per search."""
    parts = [np.asarray(e, dtype=np.int64) + i * size for i, e in enumerate(excluded)]
    codes = np.sort(np.concatenate([np.empty(0, np.int64), *parts]))
    # Sort-based de-duplication: np.unique's hash path costs ~10x more at this size.
    return codes[np.concatenate(([True], codes[1:] != codes[:-1]))] if len(codes) else codes


def _depth(size: int, needed: int) -> int:
    return min(size, 1 << max(needed - 1, 0).bit_length())


def reorder_depth(version: ModelVersion, n: int) -> int:
    """Approximate candidates to re-score exactly for `n` results: the index's own depth,
    and more for deep requests (the ranker's 100 + seen), never past the catalog."""
    depth = max(version.reorder, math.ceil(n * version.reorder_multiplier))
    return max(n, min(depth, version.size))


def _keep_mask(
    rows: np.ndarray, scores: np.ndarray, queries: np.ndarray, banned: np.ndarray, size: int
) -> np.ndarray:
    """[queries, depth] True where the result is a real, unexcluded candidate.

    ScaNN pads with (row 0, NaN) when the searched partitions hold fewer points than
    asked for: padding, not a candidate.
    """
    real = np.isfinite(scores)
    codes = rows.astype(np.int64) + queries[:, None].astype(np.int64) * size
    # Padding gets distinct negative codes, so both sides of the test are duplicate-free
    # (ScaNN returns each real row once per query) and numpy may skip de-duplicating.
    codes = np.where(real, codes, -1 - np.arange(codes.size).reshape(codes.shape))
    return real & ~np.isin(codes, banned, assume_unique=True)


def _first(rows: np.ndarray, scores: np.ndarray, keep: np.ndarray, n: int) -> Candidates:
    chosen = np.flatnonzero(keep)[:n]
    return rows[chosen].astype(np.int64), scores[chosen]


def _exhaustive(version: ModelVersion, query: np.ndarray, n: int, i: int, banned: np.ndarray):  # type: ignore[no-untyped-def]
    size = version.size
    skipped = np.searchsorted(banned, [i * size, (i + 1) * size])
    depth = min(size, n + int(skipped[1] - skipped[0]))
    rows, scores = version.searcher.search(
        query,
        final_num_neighbors=depth,
        pre_reorder_num_neighbors=reorder_depth(version, depth),
        leaves_to_search=version.leaves,
    )
    keep = _keep_mask(rows[None, :], scores[None, :], np.array([i]), banned, size)[0]
    return _first(rows, scores, keep, n)


# Under this many eligible items a filtered request is scored exactly (numpy over them):
# a 20k x 64 product is well under a millisecond, and exact beats over-fetching.
EXACT_BELOW = 20_000
OVERFETCH = 2.0  # how many more candidates than the filter's share predicts to ask for


def retrieve_filtered(
    version: ModelVersion, query: np.ndarray, wanted: int, banned: np.ndarray, allowed: np.ndarray
) -> Candidates:
    """The `wanted` best rows among `allowed` (sorted) and not `banned`: exact over a small
    eligible set; otherwise the index, asked deep enough for the filter's share of the
    catalog, with an exact search over the eligible rows if that still comes up short
    (so a request never falls short while eligible items remain)."""
    eligible = np.setdiff1d(allowed, banned)
    if len(eligible) <= EXACT_BELOW or version.item_embeddings is None:
        return _exact(version, query, eligible, wanted)
    share = len(eligible) / version.size
    depth = min(version.size, math.ceil((wanted + len(banned)) / share * OVERFETCH))
    rows, scores = version.searcher.search(
        query,
        final_num_neighbors=depth,
        pre_reorder_num_neighbors=reorder_depth(version, depth),
        leaves_to_search=version.leaves_to_search or -1,
    )
    keep = np.isfinite(scores) & np.isin(rows, eligible)
    if keep.sum() >= min(wanted, len(eligible)):
        return _first(rows, scores, keep, wanted)
    return _exact(version, query, eligible, wanted)


def _exact(version: ModelVersion, query: np.ndarray, eligible: np.ndarray, n: int) -> Candidates:
    if version.item_embeddings is None:  # an older version: the index, searched whole
        rows, scores = version.searcher.search(query, final_num_neighbors=version.size)
        keep = np.isfinite(scores) & np.isin(rows, eligible)
        return _first(rows, scores, keep, n)
    if not len(eligible):
        return np.empty(0, np.int64), np.empty(0, np.float32)
    # A partial sort (`best`): the eligible set may be most of the catalog.
    [(top, scores)] = best((version.item_embeddings[eligible] @ query)[None, :], [n])
    return eligible[top].astype(np.int64), scores.astype(np.float32)
