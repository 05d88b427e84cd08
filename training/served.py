"""Evaluate a version exactly as the app serves it: the app's public serving core
(`recommend_batch`) on the exported SavedModel, item vectors and ScaNN index."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from app.db.queries import UserProfile
from app.inputs import call_model, profile_columns
from app.manifest import RANKER
from app.serving import RecommendRequest, recommend_batch
from app.version import ModelVersion
from models import features as F
from training.dataset import Catalog, Split, item_columns
from training.report import method_metrics, ranks_from_lists

BATCH = 256


def served_profiles(catalog: Catalog, split: Split) -> list[UserProfile]:
    """What the app would read from the database at the hold-out moment: the user's
    attributes and training history, most recent first."""
    profiles = []
    for user_id, seen in zip(split.test_users, split.test_seen, strict=True):
        user = catalog.users[user_id]
        ratings = catalog.ratings.get(user_id) or [None] * len(seen)
        profiles.append(
            UserProfile(
                user_id=user_id,
                age=user["age"],
                gender=user["gender"],
                occupation=user["occupation"],
                zip_code=user["zip_code"],
                history=seen[::-1],
                history_ratings=ratings[: len(seen)][::-1],
            )
        )
    return profiles


def served_lists(
    version: ModelVersion, profiles: list[UserProfile], split: Split, k: int
) -> list[list[str]]:
    """Top-k item ids per held-out user, seen items excluded, as /recommendations returns."""
    requests = [
        RecommendRequest(profile, k, seen)
        for profile, seen in zip(profiles, split.test_seen, strict=True)
    ]
    lists: list[list[str]] = []
    for start in range(0, len(requests), BATCH):
        ranked = recommend_batch(version, requests[start : start + BATCH])
        lists.extend(r.item_ids(version) for r in ranked)
    return lists


def predicted_ratings(
    folder: Path, version: ModelVersion, catalog: Catalog, profiles: list[UserProfile], items
) -> np.ndarray | None:
    """The exported ranker's rating for each (user, held-out item) pair; None without one."""
    if version.ranking is None:
        return None
    ranker = tf.saved_model.load(str(folder / RANKER)).signatures["serving_default"]
    pairs = profile_columns(version, profiles) | item_columns(catalog, list(items))
    return call_model(ranker, {name: v for name, v in pairs.items() if name in _INPUTS})["rating"]


_INPUTS = {*F.QUERY_FEATURES, *F.CANDIDATE_FEATURES}


def evaluate_served(
    version: ModelVersion, folder: Path, catalog: Catalog, split: Split, k: int = 100
) -> dict:
    """The report entry of the served pipeline: top-k lists as /recommendations returns
    them, and the ranker's rating for each held-out item (when the version has a ranker)."""
    profiles = served_profiles(catalog, split)
    lists = served_lists(version, profiles, split, k)
    ratings = predicted_ratings(folder, version, catalog, profiles, split.test_items)
    return method_metrics(
        ranks_from_lists(lists, split.test_items),
        [items[:10] for items in lists],
        len(version.item_ids),
        rating_pred=ratings,
        rating_truth=split.test_ratings if ratings is not None else None,
    )
