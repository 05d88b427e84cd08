"""Ranking metrics and the hold-out evaluation, each against a result worked out by hand."""

import math

import numpy as np
import pytest

from app.catalog import parse_catalog_config
from training.contract import build_contract
from training.dataset import Catalog, Split, leave_last_out
from training.evaluate import evaluate_scores, popular_items, popularity_scores
from training.metrics import hit_rate, ndcg, recall_at_k, summarize, target_ranks

NO_SEEN: list[np.ndarray] = [np.array([], dtype=np.int64)]


def test_hit_rate_counts_ranks_below_k() -> None:
    ranks = np.array([0, 3, 12])
    assert hit_rate(ranks, 10) == pytest.approx(2 / 3)  # 0 and 3 are in the top 10
    assert hit_rate(ranks, 1) == pytest.approx(1 / 3)  # only rank 0
    assert hit_rate(ranks, 13) == 1.0


def test_ndcg_discounts_by_log_of_position() -> None:
    # rank 0 -> 1/log2(2) = 1; rank 3 -> 1/log2(5); rank 12 is outside the top 10 -> 0.
    expected = (1 / math.log2(2) + 1 / math.log2(5) + 0) / 3
    assert ndcg(np.array([0, 3, 12]), 10) == pytest.approx(expected)
    # rank 3 is outside the top 3: only the first user scores.
    assert ndcg(np.array([0, 3, 12]), 3) == pytest.approx(1 / 3)


def test_metrics_of_no_users_are_zero() -> None:
    assert hit_rate(np.array([], dtype=np.int64), 10) == 0.0
    assert ndcg(np.array([], dtype=np.int64), 10) == 0.0


def test_summarize_reports_each_cutoff_ndcg_at_10_and_mrr_at_100() -> None:
    result = summarize(np.array([0, 3, 12]), (1, 5))
    ndcg_10 = (1 + 1 / math.log2(5)) / 3
    mrr_100 = (1 + 1 / 4 + 1 / 13) / 3  # all three ranks are inside the top 100
    assert result == pytest.approx(
        {"hr@1": 1 / 3, "hr@5": 2 / 3, "ndcg@10": ndcg_10, "mrr": mrr_100}
    )


def test_target_rank_counts_items_scored_above_it() -> None:
    # Target column 1 (0.5): columns 0 (0.9) and 2 (0.7) beat it -> rank 2.
    scores = np.array([[0.9, 0.5, 0.7, 0.1]])
    assert target_ranks(scores, np.array([1]), NO_SEEN).tolist() == [2]


def test_seen_items_are_excluded_from_the_ranking() -> None:
    # Column 0 was seen in training: only column 2 still beats the target -> rank 1.
    scores = np.array([[0.9, 0.5, 0.7, 0.1]])
    assert target_ranks(scores, np.array([1]), [np.array([0])]).tolist() == [1]
    assert target_ranks(scores, np.array([1]), [np.array([0, 2])]).tolist() == [0]


def test_ties_count_against_the_target() -> None:
    # Columns 0 and 2 tie with the target: both are counted above it -> rank 2.
    tied = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert target_ranks(tied, np.array([1]), NO_SEEN).tolist() == [2]
    # A constant scorer puts every target last, so it can never look good.
    constant = np.zeros((1, 6))
    assert target_ranks(constant, np.array([0]), NO_SEEN).tolist() == [5]


def test_target_ranks_do_not_change_the_scores() -> None:
    scores = np.array([[0.9, 0.5, 0.7]])
    target_ranks(scores, np.array([1]), [np.array([0])])
    assert scores.tolist() == [[0.9, 0.5, 0.7]]


def test_recall_at_k_is_the_mean_overlap_ignoring_order() -> None:
    approximate = np.array([[3, 2, 1], [4, 5, 6]])
    exact = np.array([[1, 2, 9], [6, 5, 4]])
    # user 1 finds 1 and 2 of {1, 2, 9} -> 2/3; user 2 finds all three -> 1.
    assert recall_at_k(approximate, exact) == pytest.approx((2 / 3 + 1) / 2)


def test_recall_of_no_queries_is_perfect() -> None:
    assert recall_at_k(np.empty((0, 10)), np.empty((0, 10))) == 1.0


ITEM_IDS = ["a", "b", "c", "d", "e"]


def toy_split(names: dict[str, str] | None = None) -> Split:
    """Three held-out users; the training counts are a:3 b:2 c:1 d:1 e:0.

    u1 saw a, b and is tested on c; u2 saw a, tested on b; u3 saw b, c, tested on e;
    u4 and u5 have a single event each (a, d), which they train on. `names` renames items.
    """
    name = names or {i: i for i in ITEM_IDS}
    config = parse_catalog_config(
        {"name": "toy", "items": {"file": "items.csv"}, "interactions": {"file": "events.csv"}}
    )
    sequences = {"u1": "abc", "u2": "ab", "u3": "bce", "u4": "a", "u5": "d"}
    data = Catalog.from_records(
        config,
        users={u: {} for u in sequences},
        items={name[i]: {} for i in ITEM_IDS},
        sequences={u: [name[i] for i in s] for u, s in sequences.items()},
    )
    return leave_last_out(data, build_contract(data, 1))


def test_popularity_scores_give_every_user_the_training_counts() -> None:
    scores = popularity_scores(toy_split(), ITEM_IDS)
    assert scores.tolist() == [[3, 2, 1, 1, 0]] * 3


def test_popularity_baseline_on_the_toy_split() -> None:
    split = toy_split()
    result = evaluate_scores(popularity_scores(split, ITEM_IDS), split, ITEM_IDS, (1, 2, 3))
    # user 1: a, b seen; c (1) ties with d (1) -> rank 1.
    # user 2: a seen; b (2) is the best left -> rank 0.
    # user 3: b, c seen; a (3) and d (1) beat e (0) -> rank 2.
    ndcg_10 = (1 / math.log2(3) + 1 / math.log2(2) + 1 / math.log2(4)) / 3
    mrr_100 = (1 / 2 + 1 / 1 + 1 / 3) / 3  # ranks 1, 0, 2
    expected = {"hr@1": 1 / 3, "hr@2": 2 / 3, "hr@3": 1.0, "ndcg@10": ndcg_10, "mrr": mrr_100}
    assert result == pytest.approx(expected)


def test_evaluate_scores_ranks_after_removing_each_users_seen_items() -> None:
    split = toy_split()
    # Every user's seen items score highest, the target next: once seen items are
    # excluded, every target is first.
    scores = np.array(
        [
            [9.0, 8.0, 5.0, 1.0, 0.0],  # seen a, b; target c
            [9.0, 5.0, 1.0, 1.0, 0.0],  # seen a; target b
            [0.0, 9.0, 8.0, 1.0, 5.0],  # seen b, c; target e
        ]
    )
    result = evaluate_scores(scores, split, ITEM_IDS, (1,))
    assert result == {"hr@1": 1.0, "ndcg@10": 1.0, "mrr": 1.0}


def test_evaluate_scores_maps_columns_through_item_ids() -> None:
    split = toy_split()
    # The same events with the items renamed so the catalog's rows (the score columns)
    # are in reverse order: a -> "9", ..., e -> "5".
    renamed = toy_split(dict(zip(ITEM_IDS, "98765", strict=True)))
    reversed_ids = renamed.catalog.item_ids.tolist()
    assert reversed_ids == ["5", "6", "7", "8", "9"]
    assert popularity_scores(renamed, reversed_ids).tolist() == [[0, 1, 1, 2, 3]] * 3
    forward = evaluate_scores(popularity_scores(split, ITEM_IDS), split, ITEM_IDS, (1, 2))
    backward = evaluate_scores(
        popularity_scores(renamed, reversed_ids), renamed, reversed_ids, (1, 2)
    )
    assert forward == backward


def test_popular_items_are_most_interacted_first_ties_by_id() -> None:
    assert popular_items(toy_split(), 3) == [
        {"id": "a", "score": 3.0},
        {"id": "b", "score": 2.0},
        {"id": "c", "score": 1.0},
    ]
