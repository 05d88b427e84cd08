"""Query embedding + ScaNN search, batched across concurrent requests, off the event loop.

Requests wait on a queue for at most `max_wait` seconds; whatever has gathered runs as one
SavedModel call and one batched ScaNN search in a worker thread, so concurrency raises
throughput instead of queueing TensorFlow calls one by one.
"""

import asyncio
import contextlib
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from app.artifacts import ModelVersion
from app.db.queries import UserProfile
from app.inputs import Hit, call_model, profile_columns
from app.ranking import rank


@dataclass
class _Pending:
    version: ModelVersion
    profile: UserProfile
    exclude: frozenset[str]
    k: int
    future: asyncio.Future


class QueryBatcher:
    def __init__(self, *, max_batch: int = 64, max_wait: float = 0.002):
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._loop(), name="query-batcher")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def search(
        self, version: ModelVersion, profile: UserProfile, *, k: int, exclude: frozenset[str]
    ) -> list[Hit]:
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(version, profile, exclude, k, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        # A hot swap may leave requests for two versions in one batch: run each group alone.
        groups: dict[int, list[_Pending]] = {}
        for pending in batch:
            groups.setdefault(id(pending.version), []).append(pending)
        for group in groups.values():
            try:
                results = await asyncio.to_thread(search_group, group[0].version, group)
            except Exception as exc:  # handed to each waiting request, which reports it
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, hits in zip(group, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(hits)


def search_group(version: ModelVersion, group: list[_Pending]) -> list[list[Hit]]:
    """Runs in a worker thread: one query-tower call and one ScaNN search for the group,
    then (when the version has a ranker) one ranker call over all retrieved pairs."""
    users = profile_columns(version, [p.profile for p in group])
    embeddings = call_model(version.query_fn, users)["embedding"]
    if version.ranker_fn is None:
        return search_embeddings(version, embeddings, group)
    wide = [dataclasses.replace(p, k=max(p.k, version.ranking_candidates)) for p in group]
    candidates = search_embeddings(version, embeddings, wide)
    return rank(version, users, candidates, [p.k for p in group])


def search_embeddings(
    version: ModelVersion, embeddings: np.ndarray, group: list[_Pending]
) -> list[list[Hit]]:
    """Top k unexcluded items per query; re-searches every partition if one ran short."""
    wanted = [min(p.k + len(p.exclude), len(version.item_ids)) for p in group]
    rows, scores = version.searcher.search_batched(
        embeddings,
        final_num_neighbors=max(wanted),
        pre_reorder_num_neighbors=_reorder_depth(version, max(wanted)),
    )
    results = [_filter(version, r, s, p) for r, s, p in zip(rows, scores, group, strict=True)]
    for position, pending in enumerate(group):
        if len(results[position]) < min(pending.k, len(version.item_ids) - len(pending.exclude)):
            # The partitions searched held too few unseen items: search every partition.
            results[position] = _exhaustive(
                version, embeddings[position], wanted[position], pending
            )
    return results


def _exhaustive(version: ModelVersion, embedding: np.ndarray, n: int, p: _Pending) -> list[Hit]:
    rows, scores = version.searcher.search(
        embedding,
        final_num_neighbors=n,
        pre_reorder_num_neighbors=_reorder_depth(version, n),
        leaves_to_search=version.leaves,
    )
    return _filter(version, rows, scores, p)


def _reorder_depth(version: ModelVersion, n: int) -> int:
    """Approximate candidates to re-score exactly for `n` results: the index's own depth,
    and more for deep requests (the ranker's 100 + seen), never past the catalog."""
    depth = max(version.reorder, math.ceil(n * version.reorder_multiplier))
    return max(n, min(depth, len(version.item_ids)))


def _filter(version: ModelVersion, rows: np.ndarray, scores: np.ndarray, p: _Pending) -> list[Hit]:
    hits = []
    for row, score in zip(rows, scores, strict=True):
        if not np.isfinite(score):
            # ScaNN pads with (row 0, NaN) when the searched partitions hold fewer points
            # than asked for: padding, not a candidate.
            break
        item_id = version.item_ids[row]
        if item_id not in p.exclude:
            hits.append(Hit(item_id=item_id, score=float(score)))
            if len(hits) == p.k:
                break
    return hits
