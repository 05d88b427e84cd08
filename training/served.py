"""Evaluate a version exactly as the app serves it: the app's own retrieval + ranking code
on the exported SavedModels and ScaNN index, one request per held-out user."""

import numpy as np

from app.artifacts import ModelVersion
from app.db.queries import UserProfile
from app.inputs import call_model, profile_columns
from app.retrieval import _Pending, search_group
from training.dataset import Catalog, Split
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


def served_lists(version: ModelVersion, profiles: list[UserProfile], split: Split, k: int):
    """Top-k item ids per held-out user, seen items excluded, as /recommendations returns."""
    lists: list[list[str]] = []
    for start in range(0, len(profiles), BATCH):
        group = [
            _Pending(version, profile, frozenset(seen), k, None)  # type: ignore[arg-type]
            for profile, seen in zip(
                profiles[start : start + BATCH], split.test_seen[start : start + BATCH], strict=True
            )
        ]
        lists.extend([hit.item_id for hit in hits] for hits in search_group(version, group))
    return lists


def predicted_ratings(version: ModelVersion, profiles: list[UserProfile], items: list[str]):
    """The ranker's rating for each (user, held-out item) pair; None without a ranker."""
    if version.ranker_fn is None:
        return None
    pairs = profile_columns(version, profiles)
    for name in version.manifest["feature_spec"]["candidate_features"]:
        pairs[name] = np.array([version.candidate_features[i][name] for i in items], dtype=object)
    return call_model(version.ranker_fn, pairs)["rating"]


def evaluate_served(version: ModelVersion, catalog: Catalog, split: Split, k: int = 100) -> dict:
    """The report entry of the served pipeline: top-k lists as /recommendations returns
    them, and the ranker's rating for each held-out item (when the version has a ranker)."""
    profiles = served_profiles(catalog, split)
    lists = served_lists(version, profiles, split, k)
    ratings = predicted_ratings(version, profiles, split.test_items)
    return method_metrics(
        ranks_from_lists(lists, split.test_items),
        [items[:10] for items in lists],
        len(version.item_ids),
        rating_pred=ratings,
        rating_truth=split.test_ratings if ratings is not None else None,
    )
