"""`recsys train`: read the database, fit both stages, export, evaluate as served, publish."""

import asyncio
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import tensorflow as tf
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from app.artifacts import load_version
from app.db.engine import create_engine, safe_url
from app.manifest import (
    CANDIDATE_INDEX,
    CURVES,
    FILTERS,
    ITEM_IDS,
    ITEM_TOWER,
    ITEM_VECTORS,
    METADATA,
    POPULAR,
    RANKER,
    STAGING_PREFIX,
    TENSORBOARD,
    FeatureSpec,
    IndexInfo,
    Manifest,
    RankerSpec,
    ServingSpec,
    VectorFile,
)
from app.settings import Settings
from training import curves, export, tracking
from training.config import TrainConfig
from training.contract import build_contract
from training.dataset import (
    Catalog,
    Holdout,
    NoCatalogError,
    Split,
    item_columns,
    leave_last_out,
    query_columns,
    read_catalog,
)
from training.evaluate import popular_items, popularity_counts
from training.item_files import item_filters, item_metadata
from training.report import print_table, score_rows_metrics
from training.served import evaluate_served
from training.train import build_model, build_ranker, embed, fit

PROTOCOL = {
    "split": "temporal leave-last-out: each user's most recent interaction is the test item",
    "ranking": "full catalog, items seen in training excluded, no sampled negatives",
    "served": "the app's own retrieval + ranking code on the exported version",
}


class TrainingError(RuntimeError):
    """The job cannot run as asked (no data, ...); the message says what to do."""


@dataclass
class Trained:
    """Both stages fitted on one split, plus what export and evaluation need."""

    config: TrainConfig
    catalog: Catalog
    split: Split
    retrieval: tf.keras.Model
    ranker: tf.keras.Model | None
    losses: dict[str, list[float]]
    # Stage -> loss and validation metrics per epoch; the run's TensorBoard logs (moved
    # into the version folder at export). Empty for models trained outside `train`.
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    logs: Path | None = None


@dataclass
class Staged:
    """A version written to its staging folder, not yet published."""

    folder: Path
    searcher: object
    index_info: dict
    item_vectors: dict[str, np.ndarray]  # as exported: output name -> [items, dim]
    vector_files: dict[str, str]  # output name -> its file, relative to the folder
    signatures: list[str]


def run(
    settings: Settings,
    config: TrainConfig,
    *,
    console: Console,
    max_users: int | None = None,
    publish: bool = True,
) -> Path:
    """The whole job; returns the published version's folder."""
    started = time.monotonic()
    catalog = read(settings, max_users)
    trained = train(catalog, config, console=console)
    staged = stage(settings, trained)
    results = evaluate_version(settings, trained, staged, console=console)
    results["training_seconds"] = round(time.monotonic() - started, 1)
    finish_manifest(staged, trained, results)
    folder = publish_staged(settings, staged.folder, make_live=publish)
    console.print(f"published {folder.name} to {folder.parent}" + (" (live)" if publish else ""))
    if settings.training.mlflow_tracking_uri:
        run_id = tracking.record(settings.training, trained, folder, results)
        console.print(f"MLflow run {run_id} at {settings.training.mlflow_tracking_uri}")
    return folder


def publish_staged(settings: Settings, staging: Path, *, make_live: bool) -> Path:
    return export.publish(
        staging, settings.artifacts.dir, _version_of(staging), make_live=make_live
    )


def _version_of(staging: Path) -> str:
    return staging.name.removeprefix(STAGING_PREFIX)


def read(settings: Settings, max_users: int | None = None) -> Catalog:
    """Users, items and interaction sequences from the database; TrainingError (saying
    what to run) when it is unreachable, not migrated, or holds no interactions."""

    async def go() -> Catalog:
        engine = create_engine(settings.database)
        try:
            return await read_catalog(engine, max_users)
        finally:
            await engine.dispose()

    try:
        catalog = asyncio.run(go())
    except NoCatalogError:
        raise TrainingError("the database holds no catalog: run `recsys data load` first") from None
    except (SQLAlchemyError, OSError) as exc:
        raise TrainingError(
            f"cannot read {safe_url(settings.database.url)} ({type(exc).__name__}): "
            "run `recsys db upgrade` and `recsys data load` first"
        ) from None
    if not catalog.events:
        raise TrainingError("the database holds no interactions: run `recsys data load` first")
    return catalog


def train(
    catalog: Catalog,
    config: TrainConfig,
    *,
    console: Console,
    holdout: Holdout = "test",
    watch: bool = True,
) -> Trained:
    """Fit both stages. `watch`: withhold `config.validation_users` validation events and
    log validation metrics per epoch, with TensorBoard logs (`recsys tune` turns it off)."""
    # Keras warns about get_config of subclassed models we never re-create from config.
    tf.get_logger().setLevel("ERROR")
    tf.keras.utils.set_random_seed(config.seed)
    contract = build_contract(catalog, config.history_length)
    split = leave_last_out(catalog, contract, holdout)
    if not split.train_examples or not len(split.test_positions):
        raise TrainingError(
            "not enough interactions to train and evaluate: run `recsys data load` first"
        )
    # The models learn from `fitting`: the split without the events withheld to validate
    # each epoch. Evaluation, baselines and the popular list keep the whole split.
    users = config.validation_users if watch else 0
    fitting, monitor = curves.withhold_validation(split, users, config.seed)
    console.print(
        f"{catalog.config.name}: {len(catalog.user_ids)} users, {len(catalog.item_ids)} items, "
        f"{fitting.train_examples} training examples, {len(split.test_positions)} held out "
        f"({holdout}), {0 if monitor is None else len(monitor.positions)} withheld to "
        "validate each epoch"
    )
    logs = Path(tempfile.mkdtemp(prefix="recsys-tensorboard-"))
    watching = curves.Watching(fitting, monitor, logs)
    console.print("[bold]retrieval model[/bold]")
    retrieval = build_model(contract, config)
    watched = watching.callbacks("retrieval", retrieval)
    losses = {"retrieval": fit(retrieval, fitting, config, callbacks=watched)}
    ranker = None
    if config.ranker.enabled:
        console.print("[bold]ranking model[/bold]")
        ratings = catalog.event_ratings[fitting.train_positions]
        mean = float(np.nanmean(ratings)) if np.isfinite(ratings).any() else 0.0
        ranker = build_ranker(contract, config, mean, retrieval)
        watched = watching.callbacks("ranker", ranker)
        epochs = config.ranker.epochs
        losses["ranker"] = fit(ranker, fitting, config, epochs=epochs, callbacks=watched)
    return Trained(config, catalog, split, retrieval, ranker, losses, watching.curves(losses), logs)


def stage(settings: Settings, trained: Trained) -> Staged:
    """Write every file of a version into a staging folder (manifest without results).

    The item vectors come from the exported item tower's `items` signature, and the
    ScaNN index is built from those same vectors.
    """
    config, catalog = trained.config, trained.catalog
    version = export.new_version(catalog.fingerprint)
    staging = export.staging_folder(settings.artifacts.dir, version)
    signatures = export.save_towers(trained.retrieval, trained.ranker, staging)
    if trained.ranker is not None:  # the full pairwise model: the offline reference
        export.save_ranker(trained.ranker, staging / RANKER)
    rows = np.arange(len(catalog.item_ids))
    columns = item_columns(catalog, rows, trained.split.contract)
    vectors = export.item_vectors(staging / ITEM_TOWER, columns)
    files = export.write_item_vectors(staging / ITEM_VECTORS, vectors)
    searcher, index_info = export.build_index(
        vectors["embedding"], config.index, queries=tuning_queries(trained), depth=depth(config)
    )
    (staging / CANDIDATE_INDEX).mkdir()
    searcher.serialize(str(staging / CANDIDATE_INDEX), relative_path=True)  # type: ignore[attr-defined]
    export.write_metadata(staging / METADATA, item_metadata(catalog))
    export.write_json(staging / FILTERS, item_filters(catalog))
    if trained.logs is not None:
        shutil.move(trained.logs, staging / TENSORBOARD)
    if trained.curves:
        curves.plot_curves(trained.curves, staging / CURVES)
    export.write_json(staging / ITEM_IDS, catalog.item_ids.tolist())
    export.write_json(staging / POPULAR, popular_items(trained.split, config.popular_items))
    staged = Staged(staging, searcher, index_info, vectors, files, signatures)
    base_manifest(staged, trained).write(staging)
    return staged


TUNING_QUERIES = 1000


def tuning_queries(trained: Trained) -> np.ndarray | None:
    """Query vectors at up to TUNING_QUERIES training events (never a test event), which
    a tree index's search is tuned against; None for an index without a tree."""
    split, index = trained.split, trained.config.index
    if export.index_mode(len(trained.catalog.item_ids), index) != "tree_ah":
        return None
    count = min(TUNING_QUERIES, len(split.train_positions))
    picked = np.random.default_rng(0).choice(split.train_positions, count, replace=False)
    positions = np.sort(picked)
    users = np.searchsorted(split.catalog.starts, positions, side="right") - 1
    return embed(trained.retrieval.query_tower, query_columns(split, positions, users), 4096)


def depth(config: TrainConfig) -> int:
    """How many candidates the app retrieves per request: what the ranker re-orders, or
    the API's default k."""
    return config.ranker.candidates if config.ranker.enabled else 10


def evaluate_version(
    settings: Settings, trained: Trained, staged: Staged, *, console: Console
) -> dict:
    """Metrics of the staged version through the app's own serving code, plus references:
    the retrieval model alone (exact search) and popularity, all on the same hold-out."""
    split, item_ids = trained.split, trained.catalog.item_ids.tolist()
    version = load_version(settings.artifacts.dir, staged.folder.name, verify=False)
    test = query_columns(split, split.test_positions, split.test_user_rows)
    queries = embed(trained.retrieval.query_tower, test, 4096)
    candidates = staged.item_vectors["embedding"]
    counts = popularity_counts(split, item_ids)
    metrics = {
        "served": evaluate_served(version, staged.folder, split),
        # Score rows a chunk of users at a time: a million items x every test user would
        # not fit in memory as one matrix.
        "retrieval_only": score_rows_metrics(
            lambda start, stop: queries[start:stop] @ candidates.T, split, item_ids
        ),
        "popularity": score_rows_metrics(
            lambda start, stop: np.broadcast_to(counts, (stop - start, len(counts))),
            split,
            item_ids,
        ),
    }
    print_table(console, {"protocol": PROTOCOL, "methods": metrics})
    recall = index_recall(staged.searcher, queries, candidates)
    console.print(f"ScaNN recall@10 against brute force: {recall:.4f}")
    return {
        "metrics": metrics,
        "index_recall@10": recall,
        "epoch_losses": trained.losses,
        "epoch_curves": trained.curves,
    }


def index_recall(searcher, queries: np.ndarray, items: np.ndarray, k: int = 10) -> float:
    exact = export.exact_top_k(queries, items, min(k, len(items)))
    return export.search_recall(searcher, queries, exact)


def base_manifest(staged: Staged, trained: Trained) -> Manifest:
    config, catalog, split = trained.config, trained.catalog, trained.split
    ranker = None
    if trained.ranker is not None:
        ranker = RankerSpec(
            candidates=config.ranker.candidates,
            rating_blend=config.ranker.rating_blend,
            rating_mean=float(trained.ranker.rating_mean),
        )
    return Manifest(
        version=_version_of(staged.folder),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        data_fingerprint=catalog.fingerprint,
        row_counts={
            "users": len(catalog.user_ids),
            "items": len(catalog.item_ids),
            "interactions": catalog.events,
            "train_examples": split.train_examples,
            "test_users": len(split.test_positions),
        },
        embedding_dim=config.embedding_dim,
        feature_spec=FeatureSpec.model_validate(split.contract.serving_spec()),
        catalog=catalog.config,
        index=IndexInfo.model_validate({"items": len(catalog.item_ids), **staged.index_info}),
        serving=ServingSpec(
            signatures=staged.signatures,
            item_vectors={
                name: VectorFile(file=staged.vector_files[name], dim=int(values.shape[1]))
                for name, values in staged.item_vectors.items()
            },
            metadata=METADATA,
            filters=FILTERS,
        ),
        ranker=ranker,
        train_config=config.model_dump(mode="json"),
        library_versions=_library_versions(),
        git_commit=_git_commit(),
    )


def finish_manifest(staged: Staged, trained: Trained, results: dict) -> None:
    manifest = base_manifest(staged, trained)
    manifest.evaluation = results
    manifest.files = export.checksums(staged.folder)
    manifest.write(staged.folder)


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
