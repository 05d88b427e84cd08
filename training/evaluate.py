"""Hold-out evaluation of the two-tower model and a popularity baseline, same split."""

import numpy as np

from training.dataset import Split
from training.metrics import summarize, target_ranks


def _columns_of(ids: list[str], index: dict[str, int]) -> np.ndarray:
    return np.array([index[i] for i in ids if i in index], dtype=np.int64)


def evaluate_scores(
    scores: np.ndarray, split: Split, item_ids: list[str], cutoffs: tuple[int, ...]
) -> dict[str, float]:
    """scores [test users, items] -> metrics, with each user's training items excluded."""
    index = {item: column for column, item in enumerate(item_ids)}
    targets = np.array([index[i] for i in split.test_items], dtype=np.int64)
    seen = [_columns_of(s, index) for s in split.test_seen]
    return summarize(target_ranks(scores, targets, seen), cutoffs)


def popularity_scores(split: Split, item_ids: list[str]) -> np.ndarray:
    """Every user gets the same scores: the item's number of training interactions."""
    return np.tile(popularity_counts(split, item_ids), (len(split.test_items), 1))


def popularity_counts(split: Split, item_ids: list[str]) -> np.ndarray:
    """[items] training interactions per item: popularity's score, the same for everyone."""
    return np.array([split.train_item_counts.get(i, 0) for i in item_ids], dtype=np.float64)


def popular_items(split: Split, limit: int) -> list[dict]:
    """The cold-start fallback list: most interacted items first."""
    ranked = sorted(split.train_item_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"id": item, "score": float(count)} for item, count in ranked[:limit]]
