"""Evaluate a version exactly as the app serves it: the app's public serving core
(`recommend_batch`) on the exported SavedModel, item vectors and ScaNN index."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from app.db.queries import UserProfile
from app.inputs import call_model, profile_columns
from app.manifest import RANKER
from app.serving import RecommendRequest, recommend_batch
from app.version import ModelVersion
from training.dataset import Split, item_columns
from training.report import method_metrics, ranks_from_lists

BATCH = 256


def served_profiles(split: Split, start: int, stop: int) -> list[UserProfile]:
    """What the app would read from the database at the hold-out moment for evaluated
    users start..stop: the stored attributes and the training history, newest first."""
    catalog, profiles = split.catalog, []
    names = [f.name for f in catalog.config.user_fields]
    for i in range(start, stop):
        user = int(split.test_user_rows[i])
        seen = split.seen_rows(i)
        stars = catalog.event_ratings[catalog.starts[user] : split.test_positions[i]]
        profiles.append(
            UserProfile(
                user_id=catalog.user_ids[user],
                attributes={name: _stored(catalog.users[name][user]) for name in names},
                history=catalog.item_ids[seen[::-1]].tolist(),
                history_ratings=[None if np.isnan(s) else float(s) for s in stars[::-1]],
            )
        )
    return profiles


def _stored(value: object) -> object:
    """An attribute as the database returns it: NaN (a missing number) is null."""
    return None if isinstance(value, float) and value != value else value


def profile_batches(split: Split) -> Iterator[tuple[int, list[UserProfile]]]:
    for start in range(0, len(split.test_positions), BATCH):
        yield start, served_profiles(split, start, min(start + BATCH, len(split.test_positions)))


def served_lists(version: ModelVersion, split: Split, k: int) -> list[list[str]]:
    """Top-k item ids per held-out user, seen items excluded, as /recommendations returns."""
    lists: list[list[str]] = []
    for _, profiles in profile_batches(split):
        requests = [RecommendRequest(p, k, p.history) for p in profiles]
        lists.extend(r.item_ids(version) for r in recommend_batch(version, requests))
    return lists


def predicted_ratings(folder: Path, version: ModelVersion, split: Split) -> np.ndarray | None:
    """The exported ranker's rating for each (user, held-out item) pair; None without one."""
    if version.ranking is None:
        return None
    ranker = tf.saved_model.load(str(folder / RANKER)).signatures["serving_default"]
    wanted = set(version.manifest.feature_spec.ranker_inputs)
    parts = []
    for start, profiles in profile_batches(split):
        rows = split.test_item_rows[start : start + len(profiles)]
        pairs = profile_columns(version, profiles) | item_columns(
            split.catalog, rows, split.contract
        )
        parts.append(call_model(ranker, {n: v for n, v in pairs.items() if n in wanted})["rating"])
    return np.concatenate(parts) if parts else np.empty(0)


def evaluate_served(version: ModelVersion, folder: Path, split: Split, k: int = 100) -> dict:
    """The report entry of the served pipeline: top-k lists as /recommendations returns
    them, and the ranker's rating for each held-out item (when the version has a ranker)."""
    lists = served_lists(version, split, k)
    ratings = predicted_ratings(folder, version, split)
    return method_metrics(
        ranks_from_lists(lists, split.test_items),
        [items[:10] for items in lists],
        len(version.item_ids),
        rating_pred=ratings,
        rating_truth=split.test_ratings if ratings is not None else None,
    )
