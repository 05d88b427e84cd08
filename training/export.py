"""Export a trained version: query-side SavedModel, precomputed item vectors, ScaNN index,
item metadata, id map, manifest.

Everything is written into a staging folder next to the live ones and published with
one atomic rename, then the LIVE pointer is replaced atomically: a reader sees the old
version or the new one, never half of one.
"""

import hashlib
import json
import math
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scann
import tensorflow as tf

from app.manifest import ITEM_TOWER, MANIFEST, QUERY_TOWER, STAGING_PREFIX
from app.store import set_live
from models import features as F
from training.config import IndexConfig
from training.metrics import best_first, recall_at_k


def signatures(retrieval: tf.keras.Model, ranker: tf.keras.Model | None) -> tuple[dict, dict]:
    """What a version runs, as concrete functions over raw features: (query side, item side).

    Query side, the `query_tower/` SavedModel the app loads:
    - `serving_default`: raw user features -> `embedding` (the retrieval query) and, with a
      ranker, `ranking` (dotted with an item's ranking vector: the relevance score) and
      `rating_user` (the user's half of the rating head's input);
    - `rating` (with a ranker): (rating_user, rating_item) -> `rating`, the one part of
      the ranker that crosses user and item features.
    Item side, the `item_tower/` SavedModel only the exporter runs:
    - `items`: raw item features -> `embedding`, `ranking`, `rating_item`, run over the
      whole catalog once at export, so the app only reads the results.
    """

    def users(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        queries = retrieval.query_tower(features, training=False)
        if ranker is None:
            return {"embedding": queries}
        shared = queries if ranker.base is retrieval else None
        return {"embedding": queries, **ranker.user_vectors(features, shared)}

    def items(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        candidates = retrieval.candidate_tower(features, training=False)
        if ranker is None:
            return {"embedding": candidates}
        shared = candidates if ranker.base is retrieval else None
        return {"embedding": candidates, **ranker.item_vectors(features, shared)}

    def rating(rating_user: tf.Tensor, rating_item: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"rating": ranker.rating_from(rating_user, rating_item)}  # type: ignore[union-attr]

    contract: F.Contract = retrieval.contract
    query = {"serving_default": _concrete(users, [contract.query_signature()])}
    if ranker is not None:
        halves = [tf.TensorSpec([None, None], tf.float32, name=n) for n in RATING_INPUTS]
        query["rating"] = _concrete(rating, halves)
    return query, {"items": _concrete(items, [contract.candidate_signature()])}


def _concrete(function, signature: list):  # type: ignore[no-untyped-def]
    return tf.function(function, input_signature=signature).get_concrete_function()


def save_lean(path: Path, functions: dict, models: list[tf.keras.Model]) -> list[str]:
    """A SavedModel of `functions` as signatures and only the state they read.

    Its root tracks the variables and lookup tables the functions capture, not the Keras
    objects, the signatures are not also saved as methods, and there are no checkpoint
    ops (`tf.saved_model.load` restores variables without them): Keras would otherwise
    save a traced function per layer (213 functions for MovieLens; 39 remain), each
    rebuilt on every load with the GIL held, which is what slows requests down while a
    new version loads beside them (`recsys bench swap`). Returns the signature names.
    """
    root = tf.Module()
    root.state = captured_state(functions.values(), models)
    options = tf.saved_model.SaveOptions(experimental_skip_saver=True)
    tf.saved_model.save(root, str(path), signatures=functions, options=options)
    return sorted(functions)


def captured_state(functions, models: list[tf.keras.Model]) -> list:  # type: ignore[no-untyped-def]
    """The models' variables and resources (lookup tables) the functions capture, each once;
    never the optimizer's slots."""
    captured = {id(t) for f in functions for t in f.captured_inputs}
    found: dict[int, object] = {}
    for model in models:
        for obj in tf.train.TrackableView(model).descendants():
            if isinstance(obj, tf.Variable):
                handle = obj.handle
            elif isinstance(obj, tf.saved_model.experimental.TrackableResource):
                handle = obj.resource_handle
            else:
                continue
            if id(handle) in captured:
                found.setdefault(id(obj), obj)
    return list(found.values())


RATING_INPUTS = ("rating_user", "rating_item")


def save_towers(
    retrieval: tf.keras.Model,
    ranker: tf.keras.Model | None,
    folder: Path,
) -> list[str]:
    """Write `query_tower/` and `item_tower/` into folder; returns the query signatures."""
    query, items = signatures(retrieval, ranker)
    models = [retrieval, *([ranker] if ranker is not None else [])]
    save_lean(folder / ITEM_TOWER, items, models)
    return save_lean(folder / QUERY_TOWER, query, models)


def item_vectors(path: Path, columns: dict[str, np.ndarray], batch_size: int = 4096) -> dict:
    """Every item's vectors, computed by the exported item tower's `items` signature (not
    the in-memory towers), so what the app reads cannot drift from what it runs."""
    items = tf.saved_model.load(str(path)).signatures["items"]
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
    parts = [{name: t.numpy() for name, t in items(**batch).items()} for batch in dataset]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def write_item_vectors(folder: Path, vectors: dict[str, np.ndarray]) -> dict[str, str]:
    """One .npy per output (float32, rows in index order); returns name -> relative path."""
    folder.mkdir()
    written = {}
    for name, values in vectors.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(values, dtype=np.float32))
        written[name] = f"{folder.name}/{name}.npy"
    return written


def write_metadata(path: Path, rows: list[dict]) -> None:
    """The API's catalog fields, one JSON object per line in index-row order: the app
    keeps the file's bytes and decodes only the rows it answers with."""
    with path.open("wb") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())
            out.write(b"\n")


class RankerServing(tf.Module):
    """The ranker's signature: raw (user, candidate) pairs in, `score` and `rating` out."""

    def __init__(self, ranker: tf.keras.Model):
        super().__init__()
        self.ranker = ranker
        self.serve = tf.function(
            lambda features: self.ranker(features, training=False),
            input_signature=[ranker.contract.ranker_signature()],
        )


def save_ranker(ranker: tf.keras.Model, path: Path) -> None:
    module = RankerServing(ranker)
    signature = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(path), signatures={"serving_default": signature})


def index_mode(rows: int, config: IndexConfig) -> str:
    """The searcher a catalog of `rows` items gets (see IndexConfig)."""
    if rows < 64:
        return "brute_force"  # too few points to train partitions or hashing codebooks
    if config.mode != "auto":
        return config.mode
    if rows < config.brute_force_below:
        return "brute_force"
    return "ah" if rows < config.partition_above else "tree_ah"


TREE_SAMPLE = 250_000


def build_index(
    embeddings: np.ndarray,
    config: IndexConfig,
    k: int = 10,
    queries: np.ndarray | None = None,
    depth: int | None = None,
) -> tuple[object, dict]:
    """A ScaNN searcher over the item embeddings, and how it was built (for the manifest).

    `num_leaves` 1 tells the app the searcher has no partitions to widen a search over.
    With `queries` (held-out query vectors), a tree searches the fewest leaves that keep
    recall at `depth` (default k) at `config.target_recall` (`fewest_leaves`); the app
    reads the count from the manifest.
    """
    rows = len(embeddings)
    builder = scann.scann_ops_pybind.builder(embeddings.astype(np.float32), k, "dot_product")
    mode = index_mode(rows, config)
    if mode == "brute_force":
        info = {"mode": mode, "num_leaves": 1, "reorder_num_neighbors": 0}
        return builder.score_brute_force().build(), info
    info = {"mode": mode, "num_leaves": 1}
    if mode == "tree_ah":
        leaves = min(config.num_leaves or max(2, int(np.sqrt(rows))), rows // 2)
        to_search = max(1, round(leaves * config.leaves_to_search_fraction))
        # k-means on a sample: 250k rows place the centres as well as a million do
        # (recall 0.993 either way in `recsys bench index`) in half the build time.
        builder = builder.tree(
            num_leaves=leaves,
            num_leaves_to_search=to_search,
            training_sample_size=min(rows, TREE_SAMPLE),
        )
        info |= {"num_leaves": leaves, "leaves_to_search": to_search}
    reorder = min(config.reorder_num_neighbors, rows)
    searcher = (
        builder.score_ah(
            config.dimensions_per_block,
            anisotropic_quantization_threshold=config.anisotropic_quantization_threshold,
        )
        .reorder(reorder)
        .build()
    )
    info |= {"reorder_num_neighbors": reorder, "reorder_multiplier": config.reorder_multiplier}
    if mode == "tree_ah" and queries is not None and config.target_recall is not None:
        n = min(depth or k, rows)
        asked = (n, max(reorder, math.ceil(n * config.reorder_multiplier)))  # as the app asks
        count, recall, target = fewest_leaves(searcher, embeddings, queries, info, asked, config)
        tuning = {"queries": len(queries), "k": n, "recall": recall, "target": target}
        info |= {"leaves_to_search": count, "tuning": tuning}
    return searcher, info


TUNING_SHARES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075)  # of the leaves, tried fewest first


def fewest_leaves(
    searcher, items: np.ndarray, queries: np.ndarray, info: dict, depth: tuple, config: IndexConfig
) -> tuple[int, float, float]:
    """The fewest leaves a query searches, of `TUNING_SHARES` up to the configured share,
    whose recall@k against exact search over `queries` reaches the target; with its recall
    and the target. The target is `config.target_recall` where the configured share
    reaches it, else the share's own recall less `config.recall_slack`: tuning never makes
    a search slower, nor pays the share's full cost for its last hundredths of recall.

    The cost of a tree search grows with the leaves it opens (`recsys bench index`: 1M
    items, 1000 leaves: 20 searched 0.12 ms, 100 searched 0.44 ms, recall 0.9905 / 0.9929),
    so a fixed share over-searches a catalog whose neighbours sit in few leaves."""
    k, pre_reorder = depth
    exact = exact_top_k(queries, items, k, chunk=32)  # 32 x 1M scores: 128 MB at a time

    def recall_at(count: int) -> float:
        options = {"pre_reorder_num_neighbors": pre_reorder, "leaves_to_search": count}
        return search_recall(searcher, queries, exact, **options)

    ceiling: int = info["leaves_to_search"]
    best = recall_at(ceiling)
    target = config.target_recall
    if target is None or best < target:
        target = best - config.recall_slack
    shares = (round(info["num_leaves"] * share) for share in TUNING_SHARES)
    for count in sorted({c for c in shares if 1 <= c < ceiling}):
        recall = recall_at(count)
        if recall >= target:
            return count, recall, target
    return ceiling, best, target


def search_recall(searcher, queries: np.ndarray, exact: np.ndarray, **options: int) -> float:  # type: ignore[no-untyped-def]
    """recall@k of the searcher's batched search (with ScaNN's query-time `options`)
    against `exact`, each query's exact top k rows."""
    found, _ = searcher.search_batched(queries, final_num_neighbors=exact.shape[1], **options)
    return recall_at_k(np.asarray(found), exact)


def exact_top_k(
    queries: np.ndarray, embeddings: np.ndarray, k: int, chunk: int = 256
) -> np.ndarray:
    """[queries, k] rows of the exact best dot products, best first; `chunk` queries at a
    time and a partial sort, so a million-item catalog stays in memory and in time."""
    starts = range(0, len(queries), chunk)
    parts = [best_first(queries[s : s + chunk] @ embeddings.T, k) for s in starts]
    return np.concatenate([np.empty((0, min(k, len(embeddings))), np.int64), *parts])


def new_version(fingerprint: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + fingerprint[:8]


def staging_folder(artifacts_dir: Path, version: str) -> Path:
    folder = artifacts_dir / f"{STAGING_PREFIX}{version}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder, by relative path (the manifest itself excluded)."""
    result = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != MANIFEST:
            result[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def publish(staging: Path, artifacts_dir: Path, version: str, *, make_live: bool) -> Path:
    final = artifacts_dir / version
    os.rename(staging, final)  # atomic on one filesystem; fails rather than overwrite
    if make_live:
        set_live(artifacts_dir, version)
    return final
