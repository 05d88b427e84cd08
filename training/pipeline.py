"""`recsys train`: read the database, fit, evaluate against popularity, export, publish."""

import asyncio
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import tensorflow as tf
from rich.console import Console
from rich.table import Table

from app.db.engine import create_engine
from app.settings import Settings
from models import features as F
from training import export
from training.config import TrainConfig
from training.dataset import (
    Catalog,
    Split,
    item_columns,
    leave_last_out,
    read_catalog,
    vocabularies,
)
from training.evaluate import evaluate_scores, popular_items, popularity_scores
from training.metrics import recall_at_k
from training.train import build_model, embed, fit


class TrainingError(RuntimeError):
    """The job cannot run as asked (no data, ...); the message says what to do."""


def run(
    settings: Settings,
    config: TrainConfig,
    *,
    console: Console,
    max_users: int | None = None,
    publish: bool = True,
) -> Path:
    """The whole job; returns the published version's folder."""
    tf.get_logger().setLevel(
        "ERROR"
    )  # Keras warns about config of subclassed models we never re-create from config
    tf.keras.utils.set_random_seed(config.seed)
    started = time.monotonic()
    catalog = asyncio.run(_read(settings, max_users))
    split = leave_last_out(catalog, config.history_length)
    if not split.train or not split.test_items:
        raise TrainingError(
            "not enough interactions to train and evaluate: run `recsys data load` first"
        )
    console.print(
        f"{len(catalog.users)} users, {len(catalog.items)} items, "
        f"{len(split.train[F.ITEM_ID])} training examples, {len(split.test_items)} held out"
    )
    model = build_model(vocabularies(catalog), config)
    losses = fit(model, split.train, config)
    item_ids = sorted(catalog.items)
    item_vectors = embed(model.candidate_tower, item_columns(catalog, item_ids), 4096)
    query_vectors = embed(model.query_tower, split.test_queries, 4096)
    metrics = {
        "two_tower": evaluate_scores(
            query_vectors @ item_vectors.T, split, item_ids, config.eval_cutoffs
        ),
        "popularity": evaluate_scores(
            popularity_scores(split, item_ids), split, item_ids, config.eval_cutoffs
        ),
    }
    _print_metrics(console, metrics)
    searcher, index_info = export.build_index(item_vectors, config.index)
    recall = _index_recall(searcher, query_vectors, item_vectors)
    console.print(f"ScaNN recall@10 against brute force: {recall:.4f}")
    folder = _export(
        settings,
        config,
        catalog,
        split,
        model,
        searcher,
        item_ids,
        index_info,
        {
            "metrics": metrics,
            "index_recall@10": recall,
            "epoch_losses": losses,
            "training_seconds": round(time.monotonic() - started, 1),
        },
        publish,
    )
    console.print(f"published {folder.name} to {folder.parent}" + (" (live)" if publish else ""))
    return folder


async def _read(settings: Settings, max_users: int | None) -> Catalog:
    engine = create_engine(settings.database)
    try:
        return await read_catalog(engine, max_users)
    finally:
        await engine.dispose()


def _index_recall(searcher, queries: np.ndarray, items: np.ndarray, k: int = 10) -> float:
    k = min(k, len(items))
    approximate, _ = searcher.search_batched(queries, final_num_neighbors=k)
    return recall_at_k(np.asarray(approximate), export.exact_top_k(queries, items, k))


def _print_metrics(console: Console, metrics: dict[str, dict[str, float]]) -> None:
    names = list(next(iter(metrics.values())))
    table = Table(title="hold-out: each user's last interaction, full catalog, seen excluded")
    table.add_column("method")
    for name in names:
        table.add_column(name.upper(), justify="right")
    for method, values in metrics.items():
        table.add_row(method, *(f"{values[n]:.4f}" for n in names))
    console.print(table)


def _export(
    settings: Settings,
    config: TrainConfig,
    catalog: Catalog,
    split: Split,
    model,
    searcher,
    item_ids: list[str],
    index_info: dict,
    results: dict,
    publish: bool,
) -> Path:
    artifacts_dir = settings.artifacts.dir
    version = export.new_version(catalog.fingerprint)
    staging = export.staging_folder(artifacts_dir, version)
    export.save_query_tower(model.query_tower, config.history_length, staging / "query_tower")
    index_dir = staging / "candidate_index"
    index_dir.mkdir()
    searcher.serialize(str(index_dir), relative_path=True)
    export.write_json(staging / "item_ids.json", item_ids)
    export.write_json(staging / "popular.json", popular_items(split, config.popular_items))
    manifest = {
        "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data_fingerprint": catalog.fingerprint,
        "row_counts": {
            "users": len(catalog.users),
            "items": len(catalog.items),
            "interactions": sum(len(s) for s in catalog.sequences.values()),
            "train_examples": len(split.train[F.ITEM_ID]),
            "test_users": len(split.test_items),
        },
        "embedding_dim": config.embedding_dim,
        "feature_spec": F.serving_spec(config.history_length),
        "index": {"items": len(item_ids), **index_info},
        "train_config": config.model_dump(mode="json"),
        "evaluation": results,
        "library_versions": _library_versions(),
        "git_commit": _git_commit(),
        "files": export.checksums(staging),
    }
    export.write_json(staging / export.MANIFEST, manifest)
    return export.publish(staging, artifacts_dir, version, make_live=publish)


def _library_versions() -> dict[str, str]:
    names = ["tensorflow", "tf-keras", "tensorflow-recommenders", "scann", "numpy"]
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except OSError:
        return None
    return out.stdout.strip() or None
