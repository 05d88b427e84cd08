"""Classical baselines the two-tower model has to beat, on the same leave-last-out split.

EASE and ALS score every (evaluated user, item) pair; SVD predicts the held-out item's
rating. Each is fitted on `split.train` only (all training users, not just the evaluated
ones), so a split built with holdout="validation" never shows them a test item.
`tune_baselines` picks hyperparameters on the validation split; the caller refits with
them on the test split.
"""

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from surprise import SVD, Dataset, Reader
from threadpoolctl import threadpool_limits

from training.dataset import Split, ranges
from training.evaluate import evaluate_scores
from training.metrics import mae, rmse
from training.sequential import Sequences

# Fixed and small, so tuning takes the same ~20 s on every run (2 cores, ML-100K); a
# wall-clock cut-off would make the chosen parameters depend on machine load.
EASE_GRID = [{"l2": v} for v in (50.0, 100.0, 250.0, 500.0, 1000.0)]
ALS_GRID = [
    {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
    for f in (32, 64, 128)
    for r in (0.01, 0.1)
    for a in (1.0, 10.0)
]
SVD_GRID = [
    {"factors": f, "epochs": 20, "lr": 0.005, "reg": r} for f in (10, 50, 100) for r in (0.02, 0.1)
]
TUNING_CUTOFFS = (10,)
# EASE inverts a dense items x items matrix: 8 bytes x items^2, twice (the Gram matrix and
# its inverse), plus a cubic-time inverse. 12,000 items is about 2.3 GB and under a minute
# here; past it EASE is skipped, with the reason in the report.
EASE_MAX_ITEMS = 12_000


def skipped(split: Split, item_ids: list[str]) -> dict[str, str]:
    """Baselines that cannot run on this catalog, with the reason a report prints."""
    reasons = {}
    if len(item_ids) > EASE_MAX_ITEMS:
        gigabytes = 16 * len(item_ids) ** 2 / 1e9
        reasons["ease"] = (
            f"{len(item_ids):,} items: EASE's dense item x item inverse needs about "
            f"{gigabytes:.0f} GB (limit {EASE_MAX_ITEMS:,} items)"
        )
    if not np.isfinite(split.train_pairs()[2]).any():
        reasons["svd"] = "the catalog has no explicit ratings for SVD to predict"
    return reasons


def interaction_matrix(split: Split, item_ids: list[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary [users, items] matrix of the training examples (columns: item rows of the
    catalog, which are `item_ids`' order), and the evaluated users' rows in it.

    Rows are every catalog user (one without training events is an empty row). Repeated
    interactions count once.
    """
    users, items, _ = split.train_pairs()
    shape = (len(split.catalog.user_ids), len(item_ids))
    data = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((data, (users, items)), shape=shape)
    matrix.data[:] = 1.0  # csr sums duplicates; a repeat is still one interaction
    return matrix, split.test_user_rows


def split_sequences(split: Split) -> tuple[Sequences, Sequences]:
    """(every user's training items, each evaluated user's items before the held-out
    one), both oldest first: the input of the order-aware baseline."""
    catalog = split.catalog
    users = catalog.event_users[split.train_positions]
    train = Sequences.from_events(
        users, catalog.event_items[split.train_positions], n_users=len(catalog.user_ids)
    )
    lengths = split.test_positions - catalog.starts[split.test_user_rows]
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    seen = catalog.event_items[ranges(catalog.starts[split.test_user_rows], lengths)]
    return train, Sequences(items=seen, starts=starts)


def ease_scores(split: Split, item_ids: list[str], *, l2: float) -> np.ndarray:
    """EASE (Steck 2019): B = I - P·diag(1/diag(P)), P = (XᵀX + l2·I)⁻¹, scores = X·B.

    [test users, items]; the diagonal of B is zero, so an item never recommends itself.
    """
    matrix, rows = interaction_matrix(split, item_ids)
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)  # column j divided by -P[j, j]
    weights[np.diag_indices_from(weights)] = 0.0
    return np.asarray(matrix[rows] @ weights)


def als_scores(
    split: Split,
    item_ids: list[str],
    *,
    factors: int,
    regularization: float,
    iterations: int,
    alpha: float,
    seed: int,
) -> np.ndarray:
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via `implicit`, on CPU.

    [test users, items]: the dot product of user and item factors. implicit >= 0.5 takes a
    user x item CSR; confidence is 1 + alpha for an interaction, 1 elsewhere.
    """
    matrix, rows = interaction_matrix(split, item_ids)
    # implicit parallelises over users itself; a BLAS thread pool on top only contends.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            num_threads=2,
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    scores = model.user_factors[rows] @ model.item_factors.T
    # A user without training events has no factors worth ranking by.
    scores[np.asarray(matrix[rows].sum(axis=1)).ravel() == 0] = 0.0
    return scores.astype(np.float64)


def svd_rating_predictions(
    split: Split, *, factors: int, epochs: int, lr: float, reg: float, seed: int
) -> np.ndarray:
    """Biased MF (Funk SVD, `surprise.SVD`) predicting each evaluated user's held-out rating.

    [test users]. Fitted on the training events that carry a rating. As in surprise, an
    unknown user or item drops out of the estimate (the global mean plus whichever
    biases are known), and predictions are clipped to the observed rating range.
    """
    user_rows, item_rows, ratings = split.train_pairs()
    rated = ~np.isnan(ratings)
    if not rated.any():
        return np.full(len(split.test_positions), np.nan)
    catalog = split.catalog
    users = catalog.user_ids[user_rows[rated]].tolist()
    items = catalog.item_ids[item_rows[rated]].tolist()
    stars = ratings[rated].astype(np.float64).tolist()
    scale = (min(stars), max(stars))
    # (user, item, rating, timestamp) rows; surprise's DataFrame loader would need pandas.
    raw = [(u, i, r, None) for u, i, r in zip(users, items, stars, strict=True)]
    trainset = Dataset(Reader(rating_scale=scale)).construct_trainset(raw)
    model = SVD(n_factors=factors, n_epochs=epochs, lr_all=lr, reg_all=reg, random_state=seed)
    model.fit(trainset)
    pairs = zip(split.test_users, split.test_items, strict=True)
    return np.array([model.predict(u, i).est for u, i in pairs], dtype=np.float64)


def global_mean_predictions(split: Split) -> np.ndarray:
    """The rating floor: every held-out rating predicted as the training mean."""
    ratings = split.train_pairs()[2].astype(np.float64)
    return np.full(len(split.test_positions), np.nanmean(ratings))


def tune_baselines(validation_split: Split, item_ids: list[str], *, seed: int) -> dict[str, dict]:
    """Grid-search each baseline on the validation split (never on test items).

    EASE and ALS are picked by validation NDCG@10, SVD by validation RMSE; the first grid
    entry wins a tie. Returns {name: {"params", "validation", "grid", "seconds"}}, without
    the baselines `skipped` names.
    """
    split = validation_split
    leave_out = skipped(split, item_ids)

    def ranking(scores: np.ndarray) -> dict[str, float]:
        return evaluate_scores(scores, split, item_ids, TUNING_CUTOFFS)

    def rating(pred: np.ndarray) -> dict[str, float]:
        return {"rmse": rmse(pred, split.test_ratings), "mae": mae(pred, split.test_ratings)}

    searches = {
        "ease": lambda: _search(
            EASE_GRID, lambda p: ranking(ease_scores(split, item_ids, **p)), "ndcg@10"
        ),
        "als": lambda: _search(
            ALS_GRID, lambda p: ranking(als_scores(split, item_ids, seed=seed, **p)), "ndcg@10"
        ),
        "svd": lambda: _search(
            SVD_GRID,
            lambda p: rating(svd_rating_predictions(split, seed=seed, **p)),
            "rmse",
            lower_is_better=True,
        ),
    }
    return {name: search() for name, search in searches.items() if name not in leave_out}


def _search(
    grid: list[dict],
    score: Callable[[dict], dict[str, float]],
    key: str,
    *,
    lower_is_better: bool = False,
) -> dict:
    started = time.monotonic()
    trials = [{"params": params, "validation": score(params)} for params in grid]
    sign = -1.0 if lower_is_better else 1.0
    best = max(trials, key=lambda t: sign * t["validation"][key])  # max keeps the first tie
    return {**best, "grid": trials, "seconds": round(time.monotonic() - started, 2)}
