"""Export a trained version: query-tower SavedModel, ScaNN index, id map, manifest.

Everything is written into a staging folder next to the live ones and published with
one atomic rename, then the LIVE pointer is replaced atomically: a reader sees the old
version or the new one, never half of one.
"""

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scann
import tensorflow as tf

from models import features as F
from training.config import IndexConfig

LIVE_POINTER = "LIVE"
MANIFEST = "manifest.json"


class QueryServing(tf.Module):
    """The serving signature: raw user features in, `embedding` out."""

    def __init__(self, tower: tf.keras.Model, history_length: int):
        super().__init__()
        self.tower = tower
        self.serve = tf.function(
            lambda features: {"embedding": self.tower(features, training=False)},
            input_signature=[F.query_signature(history_length)],
        )


def save_query_tower(tower: tf.keras.Model, history_length: int, path: Path) -> None:
    module = QueryServing(tower, history_length)
    signature = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(path), signatures={"serving_default": signature})


class RankerServing(tf.Module):
    """The ranker's signature: raw (user, candidate) pairs in, `score` and `rating` out."""

    def __init__(self, ranker: tf.keras.Model, history_length: int):
        super().__init__()
        self.ranker = ranker
        self.serve = tf.function(
            lambda features: self.ranker(features, training=False),
            input_signature=[F.ranker_signature(history_length)],
        )


def save_ranker(ranker: tf.keras.Model, history_length: int, path: Path) -> None:
    module = RankerServing(ranker, history_length)
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


def build_index(embeddings: np.ndarray, config: IndexConfig, k: int = 10) -> tuple[object, dict]:
    """A ScaNN searcher over the item embeddings, and how it was built (for the manifest).

    `num_leaves` 1 tells the app the searcher has no partitions to widen a search over.
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
        builder = builder.tree(
            num_leaves=leaves, num_leaves_to_search=to_search, training_sample_size=rows
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
    return searcher, {
        **info,
        "reorder_num_neighbors": reorder,
        "reorder_multiplier": config.reorder_multiplier,
    }


def exact_top_k(queries: np.ndarray, embeddings: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ embeddings.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def new_version(fingerprint: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + fingerprint[:8]


def staging_folder(artifacts_dir: Path, version: str) -> Path:
    folder = artifacts_dir / f".staging-{version}"
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
        pointer = artifacts_dir / f".{LIVE_POINTER}.tmp"
        pointer.write_text(version + "\n")
        os.replace(pointer, artifacts_dir / LIVE_POINTER)
    return final
