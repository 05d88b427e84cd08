"""The rating head learns from the user's recent ratings, through the exported ranker.

Half the users warm up (six 1-star ratings, then six 5-star ones), half cool down (the
reverse): every user's all-time mean is 3, so only the recent ratings tell what the
held-out (last) rating will be.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from models import features as F
from training import export
from training.config import TrainConfig
from training.dataset import Catalog, item_features, leave_last_out, vocabularies
from training.metrics import rmse
from training.train import build_ranker, fit

pytestmark = pytest.mark.model

USERS, ITEMS, LENGTH = 40, 24, 12


def drifting_catalog() -> Catalog:
    rng = np.random.default_rng(7)
    users = {
        str(u): {"id": str(u), "age": 30, "gender": "F", "occupation": "x", "zip_code": "1"}
        for u in range(USERS)
    }
    items = {
        str(i): {"id": str(i), "title": f"Film {i}", "genres": "Drama", "release_date": ""}
        for i in range(ITEMS)
    }
    sequences, ratings = {}, {}
    for u in users:
        sequences[u] = [str(i) for i in rng.permutation(ITEMS)[:LENGTH]]
        low, high = [1.0] * (LENGTH // 2), [5.0] * (LENGTH // 2)
        ratings[u] = low + high if int(u) % 2 == 0 else high + low
    return Catalog(users, items, sequences, "drift", ratings)


CONFIG = TrainConfig(
    history_length=4, embedding_dim=8, hidden_dim=16, batch_size=64, learning_rate=0.02
)


def held_out_predictions(rating_history: bool, tmp_path: Path) -> tuple[np.ndarray, list]:
    """Train a ranker on the drifting catalog, export it, and predict each held-out rating
    through the SavedModel's signature."""
    tf.keras.utils.set_random_seed(CONFIG.seed)
    catalog = drifting_catalog()
    split = leave_last_out(catalog, CONFIG.history_length)
    config = CONFIG.model_copy(deep=True)
    config.ranker = config.ranker.model_copy(
        update={"embedding_dim": 8, "hidden_dim": 16, "rating_history": rating_history}
    )
    ranker = build_ranker(vocabularies(catalog), config, float(np.nanmean(split.train[F.RATING])))
    fit(ranker, split.train, config, epochs=40)
    export.save_ranker(ranker, config.history_length, tmp_path / "ranker")
    serve = tf.saved_model.load(str(tmp_path / "ranker")).signatures["serving_default"]
    candidates = [item_features(catalog.items[i]) for i in split.test_items]
    pairs = {
        **{name: tf.constant(values) for name, values in split.test_queries.items()},
        **{name: tf.constant([c[name] for c in candidates]) for name in F.CANDIDATE_FEATURES},
    }
    return serve(**pairs)["rating"].numpy(), split.test_ratings


def separation(predicted: np.ndarray, truth: list) -> float:
    """Mean prediction for the warming users minus that for the cooling ones."""
    warming = np.array([t == 5.0 for t in truth])
    assert warming.sum() == USERS // 2
    return float(predicted[warming].mean() - predicted[~warming].mean())


def test_recent_ratings_tell_warming_users_from_cooling_ones(tmp_path: Path) -> None:
    with_history = held_out_predictions(True, tmp_path / "with")
    without = held_out_predictions(False, tmp_path / "without")
    # Measured: 2.27 apart with the summary, 0.48 without; RMSE 1.56 vs 2.38.
    assert separation(*with_history) > 1.5
    assert separation(*without) < 1.0
    assert rmse(*with_history) < rmse(*without) - 0.5
