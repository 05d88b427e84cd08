"""Hold-out evaluation of the two-tower model and a popularity baseline, same split."""

import numpy as np

from training.dataset import Split
from training.metrics import summarize, target_ranks


def evaluate_scores(
    scores: np.ndarray, split: Split, item_ids: list[str], cutoffs: tuple[int, ...]
) -> dict[str, float]:
    """scores [test users, items] -> metrics, with each user's training items excluded."""
    seen = [split.seen_rows(i) for i in range(len(split.test_positions))]
    return summarize(target_ranks(scores, split.test_item_rows, seen), cutoffs)


def popularity_scores(split: Split, item_ids: list[str]) -> np.ndarray:
    """Every user gets the same scores: the item's number of training interactions."""
    return np.tile(popularity_counts(split, item_ids), (len(split.test_positions), 1))


def popularity_counts(split: Split, item_ids: list[str]) -> np.ndarray:
    """[items] training interactions per item: popularity's score, the same for everyone."""
    return split.item_counts.astype(np.float64)


def popular_items(split: Split, limit: int) -> list[dict]:
    """The cold-start fallback list: most interacted items first (ties by item id)."""
    counts = split.item_counts
    # Item rows follow item ids (sorted), so a stable sort breaks ties by id.
    order = np.argsort(-counts, kind="stable")[:limit]
    ids = split.catalog.item_ids
    return [{"id": ids[r], "score": float(counts[r])} for r in order.tolist() if counts[r] > 0]
