"""The towers on raw features, and a few real training steps of the two-tower model."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from app.catalog import read_catalog_config
from models import features as F
from models.layers import year_of
from training.config import TrainConfig
from training.contract import build_contract
from training.dataset import Catalog, item_columns, leave_last_out, query_columns
from training.train import build_model, embed, fit

pytestmark = pytest.mark.model

HISTORY_LENGTH = 3
PAD = F.HISTORY_PAD
GENRES = ["Action", "Comedy", "Drama", "Romance"]
MOVIELENS_100K = read_catalog_config(
    Path(__file__).resolve().parents[2] / "training" / "catalogs" / "movielens-100k.toml"
)


def user(u: int) -> dict:
    occupation = ["student", "writer", "doctor"][u % 3]
    return {
        "age": 18 + 7 * u,
        "gender": "MF"[u % 2],
        "occupation": occupation,
        "zip_code": f"{u}0001",
    }


def item(i: int) -> dict:
    return {
        "title": f"Film number {i} (19{70 + i})",
        "genres": "|".join(GENRES[: 1 + i % 3]),
        "release_date": f"01-Jan-19{70 + i}",
    }


def tiny_catalog(ratings: dict[str, list[float | None]] | None = None) -> Catalog:
    """6 users, 8 items; each user walks a different stride through the items (6 events)."""
    users = {str(u): user(u) for u in range(1, 7)}
    items = {str(i): item(i) for i in range(1, 9)}
    sequences = {u: [str((int(u) * k) % 8 + 1) for k in range(1, 7)] for u in users}
    catalog = Catalog.from_records(MOVIELENS_100K, users, items, sequences, ratings)
    return dataclasses.replace(catalog, fingerprint="tiny")


def item_rows(catalog: Catalog, ids: list[str]) -> np.ndarray:
    return np.searchsorted(catalog.item_ids, ids)


CONFIG = TrainConfig(
    history_length=HISTORY_LENGTH,
    embedding_dim=8,
    hidden_dim=16,
    batch_size=8,
    learning_rate=0.05,
    epochs=6,
)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(CONFIG.seed)
    return build_model(build_contract(tiny_catalog(), HISTORY_LENGTH), CONFIG)


def queries(user_ids, histories, zip_codes=None) -> dict[str, tf.Tensor]:
    n = len(user_ids)
    return {
        F.USER_ID: tf.constant(user_ids),
        "age": tf.constant([30] * n, dtype=tf.float32),
        "gender": tf.constant(["F"] * n),
        "occupation": tf.constant(["writer"] * n),
        "zip_code": tf.constant(zip_codes or ["10001"] * n),
        F.HISTORY: tf.constant(histories),
        F.HISTORY_RATINGS: tf.fill([n, len(histories[0])], float("nan")),
    }


def test_release_year_is_parsed_inside_the_model() -> None:
    years = year_of(tf.constant(["01-Jan-1995", "", "1997", "unknown"])).numpy()
    np.testing.assert_array_equal(years, [1995.0, np.nan, 1997.0, np.nan])


def test_unknown_user_zip_and_empty_history_give_finite_embeddings(model) -> None:
    batch = queries(["no-such-user", "1"], [[PAD] * 3, ["1", PAD, PAD]], ["XYZ99", ""])
    vectors = model.query_tower(batch).numpy()
    assert vectors.shape == (2, CONFIG.embedding_dim)
    assert np.isfinite(vectors).all()


def test_normalized_towers_give_unit_rows(model) -> None:
    batch = queries(["1", "2", "unknown"], [["1", "2", "3"], [PAD] * 3, ["8", "7", PAD]])
    catalog = tiny_catalog()
    items = item_columns(catalog, item_rows(catalog, ["1", "5", "8"]), model.contract)
    for vectors in (model.query_tower(batch), model.candidate_tower(items)):
        np.testing.assert_allclose(np.linalg.norm(vectors.numpy(), axis=1), 1.0, rtol=1e-5)


def test_history_and_its_order_change_the_query_embedding(model) -> None:
    histories = [["1", "2", PAD], ["2", "1", PAD], ["1", "3", PAD], [PAD, PAD, PAD]]
    vectors = model.query_tower(queries(["1"] * 4, histories)).numpy()
    for other in vectors[1:]:
        assert not np.allclose(vectors[0], other, atol=1e-4)


def test_padding_slots_do_not_change_the_query_embedding(model) -> None:
    # The pad is masked, whatever item embedding row it looks up.
    one = model.query_tower(queries(["1"], [["4", PAD, PAD]])).numpy()
    again = model.query_tower(queries(["1"], [["4", PAD, PAD]])).numpy()
    unknown_item = model.query_tower(queries(["1"], [["4", "no-such-item", PAD]])).numpy()
    np.testing.assert_array_equal(one, again)
    assert not np.allclose(one, unknown_item, atol=1e-4)  # OOV is not padding


def test_candidate_embedding_uses_content_features(model) -> None:
    catalog = tiny_catalog()
    base = item_columns(catalog, item_rows(catalog, ["3", "3", "3"]), model.contract)
    base["genres"] = np.array(["Drama", "Action", "Drama"])
    base["release_date"] = np.array(["01-Jan-1975", "01-Jan-1975", "01-Jan-1995"])
    vectors = model.candidate_tower(base).numpy()
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)  # genre differs
    assert not np.allclose(vectors[0], vectors[2], atol=1e-4)  # release year differs


def test_embed_in_batches_equals_one_call(model) -> None:
    catalog = tiny_catalog()
    columns = item_columns(catalog, np.arange(len(catalog.item_ids)), model.contract)
    batched = embed(model.candidate_tower, columns, batch_size=3)
    whole = model.candidate_tower({k: tf.constant(v) for k, v in columns.items()}).numpy()
    assert batched.shape == (8, CONFIG.embedding_dim)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-6)


def test_two_tower_model_learns_on_a_tiny_dataset() -> None:
    data = tiny_catalog()
    tf.keras.utils.set_random_seed(CONFIG.seed)
    contract = build_contract(data, HISTORY_LENGTH)
    model = build_model(contract, CONFIG)
    split = leave_last_out(data, contract)
    test = query_columns(split, split.test_positions, split.test_user_rows)
    before = model.query_tower(test).numpy()
    losses = fit(model, split, CONFIG)
    assert len(losses) == CONFIG.epochs
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    after = model.query_tower(test).numpy()
    assert not np.allclose(before, after, atol=1e-3)
