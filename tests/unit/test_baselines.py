"""EASE, ALS and SVD on tiny data: an oracle for EASE, structure the others must find."""

import numpy as np
import pytest

from app.catalog import parse_catalog_config
from training.baselines import (
    ALS_GRID,
    EASE_GRID,
    SVD_GRID,
    als_scores,
    ease_scores,
    global_mean_predictions,
    interaction_matrix,
    skipped,
    svd_rating_predictions,
    tune_baselines,
)
from training.contract import build_contract
from training.dataset import Catalog, Split
from training.metrics import rmse

# Ids and events only: the baselines read no features.
CONFIG = parse_catalog_config(
    {"name": "tiny", "items": {"file": "items.csv"}, "interactions": {"file": "events.csv"}}
)


def make_split(
    train: list[tuple[str, str, float | None]],
    test: list[tuple[str, str, float | None]],
    items: list[str] | None = None,
) -> Split:
    """A Split from (user, item, rating) training rows and one held-out row per user (in
    the order given): each user's events are the training rows, then the held-out one,
    so the split is leave-last-out except for users without a held-out row."""
    users = list(dict.fromkeys([u for u, _, _ in train] + [u for u, _, _ in test]))
    events = {u: [(i, r) for v, i, r in train if v == u] for u in users}
    for u, i, r in test:
        events[u].append((i, r))
    data = Catalog.from_records(
        CONFIG,
        users={u: {} for u in users},
        items={i: {} for i in items or sorted({i for _, i, _ in train + test})},
        sequences={u: [i for i, _ in e] for u, e in events.items()},
        ratings={u: [r for _, r in e] for u, e in events.items()},
    )
    row = {u: r for r, u in enumerate(data.user_ids.tolist())}
    tested = np.array([row[u] for u, _, _ in test], dtype=np.int64)
    test_positions = data.starts[tested + 1] - 1
    train_positions = np.setdiff1d(np.arange(data.events), test_positions)
    counts = np.bincount(data.event_items[train_positions], minlength=len(data.item_ids))
    return Split(data, build_contract(data, 1), train_positions, test_positions, tested, counts)


# u1 and u2 (training only) both watched a and b; u3 watched c and d; u4 saw only a.
TINY_ITEMS = ["a", "b", "c", "d", "e"]
TINY_TRAIN = [
    ("u1", "a", 5.0),
    ("u1", "b", 4.0),
    ("u2", "a", 4.0),
    ("u2", "b", 5.0),
    ("u2", "a", 3.0),  # a repeat counts once
    ("u3", "c", 2.0),
    ("u3", "d", 3.0),
    ("u4", "a", 4.0),
]
TINY_TEST = [("u4", "b", 4.0), ("u3", "a", None)]
TINY = make_split(TINY_TRAIN, TINY_TEST, TINY_ITEMS)


def ease_oracle(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck 2019, eq. 8 as written: B = I - P diagMat(1 / diag(P)), P = (XᵀX + λI)⁻¹."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p @ np.diag(1.0 / np.diag(p))


def test_interaction_matrix_is_binary_over_all_training_users() -> None:
    matrix, rows = interaction_matrix(TINY, TINY_ITEMS)
    assert TINY.catalog.user_ids.tolist() == ["u1", "u2", "u3", "u4"]  # the matrix's rows
    assert rows.tolist() == [3, 2]  # u4 and u3, the evaluated users in test order
    assert matrix.toarray().tolist() == [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],  # u2's second "a" does not make a 2
        [0, 0, 1, 1, 0],
        [1, 0, 0, 0, 0],
    ]


@pytest.mark.parametrize("l2", [0.5, 10.0])
def test_ease_matches_the_closed_form(l2: float) -> None:
    x = interaction_matrix(TINY, TINY_ITEMS)[0].toarray().astype(np.float64)
    weights = ease_oracle(x, l2)
    assert np.allclose(np.diag(weights), 0.0)  # the constraint diag(B) = 0
    expected = x[[3, 2]] @ weights  # rows of u4 and u3, in test order
    assert np.allclose(ease_scores(TINY, TINY_ITEMS, l2=l2), expected)


def test_ease_ranks_a_co_occurring_item_above_one_that_never_co_occurs() -> None:
    scores = ease_scores(TINY, TINY_ITEMS, l2=1.0)
    u4 = dict(zip(TINY_ITEMS, scores[0], strict=True))
    # u4 has a; b co-occurs with a (u1, u2), c and d only with each other, e with nothing.
    assert u4["b"] > 0.0
    assert u4["b"] > u4["c"] and u4["b"] > u4["d"] and u4["b"] > u4["e"]
    assert u4["c"] == pytest.approx(0.0) and u4["e"] == pytest.approx(0.0)


def test_ease_columns_follow_the_catalogs_item_rows() -> None:
    # The same events with items renamed so that their sorted order (the catalog's
    # rows, the score columns) is reversed: a -> "9", ..., e -> "5".
    renamed = dict(zip(TINY_ITEMS, "98765", strict=True))
    reordered = make_split(
        [(u, renamed[i], r) for u, i, r in TINY_TRAIN],
        [(u, renamed[i], r) for u, i, r in TINY_TEST],
        list(renamed.values()),
    )
    assert reordered.catalog.item_ids.tolist() == ["5", "6", "7", "8", "9"]
    forward = ease_scores(TINY, TINY_ITEMS, l2=1.0)
    backward = ease_scores(reordered, reordered.catalog.item_ids.tolist(), l2=1.0)
    assert np.allclose(forward, backward[:, ::-1])


def block_split(seed: int = 0) -> tuple[Split, list[str]]:
    """Two communities: users 0-29 watch items A0-A11, users 30-59 watch B0-B11.

    Each user watched 8 of the 12 items of their block; the held-out item is a ninth.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for user in range(60):
        block = "A" if user < 30 else "B"
        chosen = rng.permutation(12)[:9]
        for i in chosen[:8]:
            train.append((f"u{user}", f"{block}{i}", 4.0))
        test.append((f"u{user}", f"{block}{chosen[8]}", 4.0))
    split = make_split(train, test)
    return split, split.catalog.item_ids.tolist()  # the score columns


def test_als_ranks_every_unseen_in_block_item_above_every_out_of_block_item() -> None:
    split, items = block_split()
    # Two factors, the rank of the block structure: with more, ALS also fits which 8 of
    # the 12 each user happened to watch, and its few unseen in-block items drift to ~0.
    scores = als_scores(
        split, items, factors=2, regularization=0.01, iterations=15, alpha=1.0, seed=0
    )
    assert scores.shape == (60, 24)
    for row, user in enumerate(split.test_users):
        seen = [items[c] for c in split.seen_rows(row)]
        block = "A" if int(user[1:]) < 30 else "B"
        unseen_in = [c for c, i in enumerate(items) if i[0] == block and i not in seen]
        outside = [c for c, i in enumerate(items) if i[0] != block]
        assert scores[row, unseen_in].min() > scores[row, outside].max()


def test_als_is_deterministic_for_a_seed() -> None:
    split, items = block_split()
    args = dict(factors=4, regularization=0.01, iterations=5, alpha=1.0)
    first = als_scores(split, items, seed=3, **args)
    assert np.array_equal(first, als_scores(split, items, seed=3, **args))


def rating_split() -> Split:
    """Users 0-29 love A items (5) and hate B items (1); users 30-59 the other way round.

    Everyone rated 5 of the 8 items of each block; the held-out rating is for a sixth item
    of one block.
    """
    rng = np.random.default_rng(1)
    train, test = [], []
    for user in range(60):
        likes = "A" if user < 30 else "B"
        for block in "AB":
            stars = 5.0 if block == likes else 1.0
            order = rng.permutation(8)
            train += [(f"u{user}", f"{block}{i}", stars) for i in order[:5]]
            if block == "AB"[user % 2]:
                test.append((f"u{user}", f"{block}{order[5]}", stars))
    return make_split(train, test)


def test_svd_beats_the_global_mean_on_structured_ratings() -> None:
    split = rating_split()
    pred = svd_rating_predictions(split, factors=4, epochs=100, lr=0.02, reg=0.02, seed=0)
    assert pred.shape == (60,)
    assert pred.min() >= 1.0 and pred.max() <= 5.0  # clipped to the observed scale
    baseline = global_mean_predictions(split)
    assert baseline == pytest.approx(np.full(60, 3.0))  # as many 5s as 1s
    # The mean is 2 away from every truth (RMSE 2); SVD has learnt who likes what.
    assert rmse(pred, split.test_ratings) < 0.5 * rmse(baseline, split.test_ratings)


def test_svd_falls_back_for_unknown_users_and_items() -> None:
    split = make_split(
        train=[("u1", "a", 5.0), ("u2", "a", 3.0), ("u2", "b", 1.0)],
        test=[("stranger", "zzz", None)],  # neither user nor item was trained on
    )
    pred = svd_rating_predictions(split, factors=2, epochs=5, lr=0.005, reg=0.02, seed=0)
    assert pred.tolist() == pytest.approx([3.0])  # the global mean (5 + 3 + 1) / 3


def test_tuning_picks_the_best_validation_entry_of_each_grid() -> None:
    split, items = block_split()
    tuned = tune_baselines(split, items, seed=0)
    assert set(tuned) == {"ease", "als", "svd"}
    for name, grid, key, pick in (
        ("ease", EASE_GRID, "ndcg@10", max),
        ("als", ALS_GRID, "ndcg@10", max),
        ("svd", SVD_GRID, "rmse", min),
    ):
        result = tuned[name]
        assert [t["params"] for t in result["grid"]] == grid
        assert result["params"] in grid
        assert result["validation"][key] == pick(t["validation"][key] for t in result["grid"])


def test_without_explicit_ratings_svd_is_skipped_with_a_reason() -> None:
    unrated = make_split(
        [(u, i, None) for u, i, _ in TINY_TRAIN], [(u, i, None) for u, i, _ in TINY_TEST]
    )
    items = unrated.catalog.item_ids.tolist()
    assert skipped(TINY, TINY_ITEMS) == {}
    assert skipped(unrated, items) == {
        "svd": "the catalog has no explicit ratings for SVD to predict"
    }
    assert set(tune_baselines(unrated, items, seed=0)) == {"ease", "als"}
