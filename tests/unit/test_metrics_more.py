"""MRR, coverage, RMSE/MAE and the HR@K curve, each against arithmetic done by hand."""

import math

import numpy as np
import pytest

from training.metrics import coverage, hit_rate, hr_curve, mae, mrr, ndcg, rmse, summarize

# Ranks of four users: first, fourth, thirteenth, and not in the served list at all.
RANKS = np.array([0, 3, 12, np.inf])


def test_mrr_is_the_mean_reciprocal_of_the_one_based_rank() -> None:
    # 1/1 + 1/4 + 1/13 + 0 (inf), over 4 users.
    assert mrr(RANKS) == pytest.approx((1 + 0.25 + 1 / 13) / 4)


def test_mrr_with_a_cutoff_gives_nothing_past_it() -> None:
    # rank 12 is past the top 10: (1 + 1/4 + 0 + 0) / 4 = 0.3125.
    assert mrr(RANKS, cutoff=10) == pytest.approx(0.3125)
    # rank 12 is the 13th place, inside a cutoff of 13.
    assert mrr(RANKS, cutoff=13) == pytest.approx((1 + 0.25 + 1 / 13) / 4)


def test_a_large_int_rank_is_a_miss_like_inf() -> None:
    huge = np.array([0, 10**12])
    assert mrr(huge, cutoff=100) == pytest.approx(0.5)  # (1 + 0) / 2
    assert hit_rate(huge, 100) == 0.5
    assert ndcg(huge, 10) == pytest.approx(0.5)


def test_inf_ranks_are_misses_for_hit_rate_and_ndcg() -> None:
    assert hit_rate(RANKS, 100) == pytest.approx(3 / 4)
    # 1/log2(2) + 1/log2(5), ranks 12 and inf score 0, over 4.
    assert ndcg(RANKS, 10) == pytest.approx((1 + 1 / math.log2(5)) / 4)


def test_metrics_of_no_users_are_zero() -> None:
    empty = np.array([], dtype=np.float64)
    assert mrr(empty) == 0.0
    assert mrr(empty, cutoff=10) == 0.0
    assert hr_curve(empty, [1, 10]).tolist() == [0.0, 0.0]


def test_hr_curve_matches_hit_rate_at_each_k() -> None:
    # rank < 1: {0} -> 1/4; < 4: {0, 3} -> 2/4; < 13: {0, 3, 12} -> 3/4; inf never hits.
    assert hr_curve(RANKS, [1, 4, 13, 100]).tolist() == [0.25, 0.5, 0.75, 0.75]
    ks = list(range(1, 101))
    assert hr_curve(RANKS, ks).tolist() == [hit_rate(RANKS, k) for k in ks]


def test_hr_curve_at_zero_is_zero() -> None:
    assert hr_curve(RANKS, [0]).tolist() == [0.0]  # no rank is below 0


def test_coverage_counts_distinct_items_over_the_catalog() -> None:
    # {1, 2, 3} and {2, 3, 4} share two: 4 distinct of 8 -> 0.5.
    assert coverage([[1, 2, 3], [2, 3, 4]], 8) == 0.5
    assert coverage(np.array([[1, 2, 3], [2, 3, 4]]), 8) == 0.5
    # ids work the same as column indices: {"a", "b"} of 10 -> 0.2.
    assert coverage([["a", "b"], ["b", "a"]], 10) == pytest.approx(0.2)


def test_coverage_of_nothing_is_zero() -> None:
    assert coverage([], 5) == 0.0
    assert coverage([[1]], 0) == 0.0


def test_rmse_and_mae_skip_unknown_truth() -> None:
    pred = np.array([3.0, 4.0, 5.0, 1.0])
    truth = [4.0, float("nan"), 2.0, None]
    # errors -1 and 3 (the NaN and None users are skipped):
    # RMSE = sqrt((1 + 9) / 2) = sqrt(5); MAE = (1 + 3) / 2 = 2.
    assert rmse(pred, truth) == pytest.approx(math.sqrt(5))
    assert mae(pred, truth) == pytest.approx(2.0)


def test_rmse_and_mae_of_a_perfect_prediction_are_zero() -> None:
    truth = np.array([1.0, 2.5, 5.0])
    assert rmse(truth, truth) == 0.0
    assert mae(truth, truth) == 0.0


def test_rmse_and_mae_without_any_truth_are_nan() -> None:
    assert math.isnan(rmse(np.array([3.0]), [None]))
    assert math.isnan(mae(np.array([]), np.array([])))


def test_summarize_adds_mrr_at_100() -> None:
    # ranks 0, 3, 150: 1 + 1/4 + 0 (150 is past the top 100), over 3 users.
    result = summarize(np.array([0, 3, 150]), (10,))
    assert result["mrr"] == pytest.approx(1.25 / 3)
    assert set(result) == {"hr@10", "ndcg@10", "mrr"}
