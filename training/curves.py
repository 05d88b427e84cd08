"""Training you can watch: validation metrics per epoch, TensorBoard logs, a curve PNG.

The validation set is honest: a seeded sample of users whose validation event (the one
before their held-out test event) is taken out of the training examples, so the model
never fits it; after every epoch each stage ranks the whole catalog for those users (its
own query and item vectors, their training items excluded) and HR@10 and NDCG@10 of
their validation items are logged beside the loss. Nothing reads them to choose anything:
they are for people.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from training.dataset import Split, item_columns, query_columns
from training.metrics import hit_rate, ndcg, target_ranks

# (query vectors, item vectors) of a stage, from raw query and item columns.
Vectors = Callable[[dict, dict], tuple[np.ndarray, np.ndarray]]
BATCH = 4096


@dataclass(frozen=True)
class Monitor:
    """The withheld validation events: positions in the catalog's event arrays."""

    positions: np.ndarray  # int64 [users sampled]
    user_rows: np.ndarray  # int64 [users sampled]


def withhold_validation(split: Split, users: int, seed: int) -> tuple[Split, Monitor | None]:
    """The split without the validation events of up to `users` sampled users (each with
    at least one training event left before it), and those events."""
    catalog = split.catalog
    before_test = split.test_positions - 1
    eligible = before_test > catalog.starts[split.test_user_rows]  # history left to read
    candidates = np.flatnonzero(eligible)
    if users <= 0 or len(candidates) == 0:
        return split, None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, size=min(users, len(candidates)), replace=False))
    positions = before_test[chosen]
    train = np.setdiff1d(split.train_positions, positions, assume_unique=True)
    counts = np.bincount(catalog.event_items[train], minlength=len(catalog.item_ids))
    kept = replace(split, train_positions=train, item_counts=counts.astype(np.int64))
    return kept, Monitor(positions, split.test_user_rows[chosen])


class ValidationMetrics(tf.keras.callbacks.Callback):
    """After each epoch: `val_hr@10` and `val_ndcg@10` in the epoch's logs (so the
    TensorBoard callback after it writes them) and in `self.history`."""

    def __init__(self, split: Split, monitor: Monitor, vectors: Vectors):
        super().__init__()
        self.split, self.monitor, self.vectors = split, monitor, vectors
        self.queries = query_columns(split, monitor.positions, monitor.user_rows)
        rows = np.arange(len(split.catalog.item_ids))
        self.items = item_columns(split.catalog, rows, split.contract)
        catalog = split.catalog
        self.targets = catalog.event_items[monitor.positions].astype(np.int64)
        starts = catalog.starts[monitor.user_rows]
        pairs = zip(starts, monitor.positions, strict=True)
        self.seen = [catalog.event_items[s:p] for s, p in pairs]
        self.history: dict[str, list[float]] = {"val_hr@10": [], "val_ndcg@10": []}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        users, items = self.vectors(self.queries, self.items)
        ranks = np.concatenate(
            [
                target_ranks(
                    users[s : s + 256] @ items.T, self.targets[s : s + 256], self.seen[s : s + 256]
                )
                for s in range(0, len(users), 256)
            ]
        )
        found = {"val_hr@10": hit_rate(ranks, 10), "val_ndcg@10": ndcg(ranks, 10)}
        for name, value in found.items():
            self.history[name].append(value)
            if logs is not None:
                logs[name] = value


class EpochLoss(tf.keras.callbacks.Callback):
    """The epoch's loss as the mean over its batches. TFRS models report each batch's own
    loss, so Keras would record the last batch's (a partial batch: smaller by design)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and self.losses:
            logs["loss"] = float(np.mean(self.losses))


def retrieval_vectors(model: tf.keras.Model) -> Vectors:
    def vectors(queries: dict, items: dict) -> tuple[np.ndarray, np.ndarray]:
        return _run(model.query_tower, queries), _run(model.candidate_tower, items)

    return vectors


def ranking_vectors(model: tf.keras.Model) -> Vectors:
    """The ranker's relevance part (what the served order is, with rating_blend 0)."""

    def vectors(queries: dict, items: dict) -> tuple[np.ndarray, np.ndarray]:
        users = _run(lambda f: model.user_vectors(f)["ranking"], queries)
        return users, _run(lambda f: model.item_vectors(f)["ranking"], items)

    return vectors


def _run(fn: Callable, columns: dict) -> np.ndarray:
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(BATCH)
    return np.concatenate([np.asarray(fn(batch)) for batch in dataset], axis=0)


def tensorboard(log_dir: Path, stage: str) -> tf.keras.callbacks.TensorBoard:
    return tf.keras.callbacks.TensorBoard(
        log_dir=str(log_dir / stage), write_graph=False, profile_batch=0, update_freq="epoch"
    )


class Watching:
    """Each stage's callbacks (validation metrics, TensorBoard) and what they recorded."""

    def __init__(self, split: Split, monitor: Monitor | None, logs: Path):
        self.split, self.monitor, self.logs = split, monitor, logs
        self.validation: dict[str, ValidationMetrics] = {}

    def callbacks(self, stage: str, model: tf.keras.Model) -> list:
        found = []
        if self.monitor is not None:
            vectors = ranking_vectors if stage == "ranker" else retrieval_vectors
            found.append(ValidationMetrics(self.split, self.monitor, vectors(model)))
            self.validation[stage] = found[-1]
        # TensorBoard last: it logs what the others put in the epoch's logs.
        return [EpochLoss(), *found, tensorboard(self.logs, stage)]

    def curves(self, losses: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
        return {
            stage: {
                "loss": loss,
                **(self.validation[stage].history if stage in self.validation else {}),
            }
            for stage, loss in losses.items()
        }


def plot_curves(curves: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """One PNG: each stage's training loss per epoch (its own panel: the stages' losses
    have different scales), and every stage's validation HR@10 and NDCG@10 together."""
    figure = Figure(figsize=(5 * (len(curves) + 1), 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(curves) + 1, squeeze=False)[0]
    metrics = axes[-1]
    for axis, (stage, series) in zip(axes, curves.items(), strict=False):
        losses = series.get("loss", [])
        axis.plot(range(1, len(losses) + 1), losses, marker="o")
        axis.set(title=f"{stage}: training loss", xlabel="epoch")
        for name, style in (("val_hr@10", "-"), ("val_ndcg@10", "--")):
            values = series.get(name) or []
            label = f"{stage} {name.removeprefix('val_')}"
            metrics.plot(range(1, len(values) + 1), values, style, marker="o", label=label)
    metrics.set(title="validation (withheld events)", xlabel="epoch")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metrics.lines:
        metrics.legend()
    figure.tight_layout()
    figure.savefig(path)
    return path
