"""The sequential (item-transition) baseline, each check against a hand count or an oracle."""

import numpy as np
import pytest

from training.metrics import target_ranks
from training.sequential import (
    GRID,
    TIE_BREAK,
    Sequences,
    fit_transitions,
    grid_points,
    item_popularity,
    masked_ranks,
    score_chunks,
    transition_scores,
    tune_sequential,
)

# Two users; the pair (1, 2) across the user boundary must never be counted.
TOY = Sequences.from_lists([[0, 1, 2, 1], [2, 0]])


def test_transitions_match_a_hand_count() -> None:
    # Distance 1: 0->1, 1->2, 2->1 (user 0), 2->0 (user 1). Distance 2: 0->2, 1->1.
    # Distance 3: 0->1. Weights decay ** (d - 1) with decay 0.5: 1, 0.5, 0.25.
    expected = np.zeros((3, 3), dtype=np.float32)
    expected[0, 1] = 1 + 0.25
    expected[1, 2] = 1
    expected[2, 1] = 1
    expected[2, 0] = 1
    expected[0, 2] = 0.5
    expected[1, 1] = 0.5
    transitions = fit_transitions(TOY, 3, window=3, decay=0.5)
    assert transitions.dtype == np.float32
    np.testing.assert_allclose(transitions.toarray(), expected)


def test_window_one_counts_only_direct_successors() -> None:
    expected = np.zeros((3, 3), dtype=np.float32)
    expected[0, 1] = expected[1, 2] = expected[2, 1] = expected[2, 0] = 1
    np.testing.assert_array_equal(fit_transitions(TOY, 3, window=1).toarray(), expected)


def test_backward_and_alpha_follow_their_formula() -> None:
    forward = fit_transitions(TOY, 3, window=2).toarray()
    popularity = np.array([2.0, 2.0, 2.0])  # every toy item occurs twice
    expected = (forward + 0.5 * forward.T) / popularity[None, :] ** 0.5
    got = fit_transitions(TOY, 3, window=2, backward=0.5, alpha=0.5).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_chunked_scores_equal_one_shot_scores() -> None:
    rng = np.random.default_rng(0)
    lists = [rng.integers(0, 30, size=rng.integers(0, 12)).tolist() for _ in range(23)]
    histories = Sequences.from_lists(lists)
    transitions = fit_transitions(histories, 30, window=3, decay=0.7, backward=0.5)
    popularity = item_popularity(histories, 30)
    kwargs = {"last": 3, "recency": 0.5}
    whole = transition_scores(transitions, histories, popularity, **kwargs)
    chunks = list(score_chunks(transitions, histories, popularity, chunk_users=4, **kwargs))
    assert [start for start, _ in chunks] == list(range(0, 23, 4))
    assert all(scores.dtype == np.float32 for _, scores in chunks)
    np.testing.assert_array_equal(np.concatenate([scores for _, scores in chunks]), whole)


def test_scores_weight_the_newest_items_most() -> None:
    # 0 is followed by 1, 2 by 3. The newest history item's successor must come first.
    train = Sequences.from_lists([[0, 1], [2, 3]])
    transitions = fit_transitions(train, 4, window=1)
    popularity = item_popularity(train, 4)
    histories = Sequences.from_lists([[2, 0], [0, 2]])
    scores = transition_scores(transitions, histories, popularity, last=2, recency=0.5)
    assert scores[0, 1] > scores[0, 3] > 0  # newest is 0
    assert scores[1, 3] > scores[1, 1] > 0  # newest is 2
    only_newest = transition_scores(transitions, histories, popularity, last=1, recency=0.5)
    assert only_newest[0, 3] <= TIE_BREAK < only_newest[0, 1]  # 2 is out of reach


def test_empty_history_gives_the_popularity_order() -> None:
    train = Sequences.from_lists([[3, 1, 3, 2, 3, 1]])  # popularity 3 > 1 > 2 > 0
    transitions = fit_transitions(train, 4, window=1)
    empty = Sequences.from_lists([[]])
    scores = transition_scores(transitions, empty, item_popularity(train, 4), last=3, recency=0.5)
    assert np.argsort(-scores[0], kind="stable").tolist() == [3, 1, 2, 0]
    assert scores.max() <= TIE_BREAK


def test_items_without_evidence_rank_below_any_evidence_and_by_popularity() -> None:
    # Item 4 is the most popular but never follows 0; 1 follows 0 once, with a small weight.
    train = Sequences.from_lists([[0, 1], [4, 4, 4, 2, 4, 3, 4]])
    transitions = fit_transitions(train, 5, window=1, alpha=1.0)
    popularity = item_popularity(train, 5)
    scores = transition_scores(
        transitions, Sequences.from_lists([[0]]), popularity, last=1, recency=0.5
    )
    assert np.argsort(-scores[0], kind="stable").tolist() == [1, 4, 0, 2, 3]


def test_masked_ranks_agree_with_the_metrics_module() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(6, 9)).astype(np.float32)  # many ties
    lists = [[0, 1], [], [8], [2, 3, 4], [5], [6, 7]]
    targets = np.array([2, 0, 1, 5, 5, 0])  # user 4's target is seen: a miss
    expected = target_ranks(scores, targets, [np.array(s, dtype=np.int64) for s in lists])
    seen = Sequences.from_lists(lists)
    np.testing.assert_array_equal(masked_ranks(scores, targets, seen), expected)
    assert expected[4] == 8  # every unseen item ties with or beats -inf


def test_drop_last_holds_out_each_users_newest_item() -> None:
    prefix, newest = Sequences.from_lists([[5, 6, 7], [8], []]).drop_last()
    assert newest.tolist() == [7, 8, -1]
    assert prefix.items.tolist() == [5, 6] and prefix.starts.tolist() == [0, 2, 2, 2]


def test_from_events_keeps_each_users_order() -> None:
    users = np.array([1, 0, 1, 0, 1])
    items = np.array([10, 20, 11, 21, 12])
    sequences = Sequences.from_events(users, items, n_users=3)
    assert sequences.items.tolist() == [20, 21, 10, 11, 12]
    assert sequences.starts.tolist() == [0, 2, 5, 5]
    assert sequences.rows(1, 3).items.tolist() == [10, 11, 12]


def test_grid_has_no_duplicate_points() -> None:
    points = grid_points(GRID)
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert all(p["decay"] == 1.0 for p in points if p["window"] == 1)


def _chain(seed: int, n_items: int = 60) -> tuple[Sequences, np.ndarray]:
    """Training runs along one cycle through every item, so succ[x] always follows x."""
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(n_items)
    succ = np.empty(n_items, dtype=np.int64)
    succ[cycle] = np.roll(cycle, -1)
    runs = []
    for start in rng.integers(0, n_items, size=200):
        run = [int(start)]
        for _ in range(7):
            run.append(int(succ[run[-1]]))
        runs.append(run)
    return Sequences.from_lists(runs), succ


def _shuffled_histories(succ: np.ndarray, seed: int) -> tuple[Sequences, np.ndarray]:
    """Histories of unrelated items, so older items' successors compete with the target."""
    rng = np.random.default_rng(seed)
    lists, targets = [], []
    while len(lists) < 100:
        history = rng.choice(len(succ), size=5, replace=False)
        if succ[history[-1]] not in history:
            lists.append(history.tolist())
            targets.append(succ[history[-1]])
    return Sequences.from_lists(lists), np.array(targets)


def test_tuning_picks_the_generating_parameters_on_a_markov_chain() -> None:
    train, succ = _chain(2)
    histories, targets = _shuffled_histories(succ, 3)
    # Wrong values first: a tie would keep them, so only a strictly better score moves on.
    grid = {
        "window": (1,),
        "decay": (1.0,),
        "backward": (1.0, 0.0),
        "alpha": (0.5, 0.0),
        "last": (5, 1),
        "recency": (1.0,),
    }
    tuned = tune_sequential(train, histories, targets, histories, len(succ), grid=grid)
    assert tuned["params"]["backward"] == 0.0  # the predecessor would tie with the target
    assert tuned["params"]["last"] == 1  # older items' successors would tie with it
    assert tuned["validation"]["hr@10"] == 1.0
    assert tuned["validation"]["ndcg@10"] == pytest.approx(1.0)


def test_default_grid_reaches_a_high_hit_rate_on_a_markov_chain() -> None:
    train, succ = _chain(4)
    histories, targets = _shuffled_histories(succ, 5)
    tuned = tune_sequential(train, histories, targets, histories, len(succ))
    assert tuned["grid"] == len(grid_points(GRID))
    assert tuned["validation"]["hr@10"] >= 0.95


def test_tuning_never_fits_on_held_out_items() -> None:
    # Items 60..69 occur only as validation targets: fitting on them would put them right
    # after each user's last item; fitted on train only they have no evidence and no
    # popularity, so they rank last among 70 items and never hit.
    train, succ = _chain(6)
    histories, _ = _shuffled_histories(succ, 7)
    held_out = 60 + np.arange(len(histories.starts) - 1) % 10
    tuned = tune_sequential(train, histories, held_out, histories, 70)
    assert tuned["validation"]["hr@10"] == 0.0
    assert fit_transitions(train, 70, window=10)[:, 60:].nnz == 0
