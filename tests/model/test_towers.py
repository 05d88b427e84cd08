"""The towers on raw features, and a few real training steps of the two-tower model."""

import numpy as np
import pytest
import tensorflow as tf

from models import features as F
from models.candidate_tower import release_year
from training.config import TrainConfig
from training.dataset import Catalog, item_columns, leave_last_out, vocabularies
from training.train import build_model, embed, fit

pytestmark = pytest.mark.model

HISTORY_LENGTH = 3
PAD = F.HISTORY_PAD
GENRES = ["Action", "Comedy", "Drama", "Romance"]


def user(u: int) -> dict:
    occupation = ["student", "writer", "doctor"][u % 3]
    return {
        "id": str(u),
        "age": 18 + 7 * u,
        "gender": "MF"[u % 2],
        "occupation": occupation,
        "zip_code": f"{u}0001",
    }


def item(i: int) -> dict:
    return {
        "id": str(i),
        "title": f"Film number {i} (19{70 + i})",
        "genres": "|".join(GENRES[: 1 + i % 3]),
        "release_date": f"01-Jan-19{70 + i}",
    }


def tiny_catalog() -> Catalog:
    """6 users, 8 items; each user walks a different stride through the items."""
    users = {str(u): user(u) for u in range(1, 7)}
    items = {str(i): item(i) for i in range(1, 9)}
    sequences = {u: [str((int(u) * k) % 8 + 1) for k in range(1, 7)] for u in users}
    return Catalog(users=users, items=items, sequences=sequences, fingerprint="tiny")


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
    return build_model(vocabularies(tiny_catalog()), CONFIG)


def queries(user_ids, histories, zip_codes=None) -> dict[str, tf.Tensor]:
    n = len(user_ids)
    return {
        F.USER_ID: tf.constant(user_ids),
        F.AGE: tf.constant([30] * n, dtype=tf.int64),
        F.GENDER: tf.constant(["F"] * n),
        F.OCCUPATION: tf.constant(["writer"] * n),
        F.ZIP_CODE: tf.constant(zip_codes or ["10001"] * n),
        F.HISTORY: tf.constant(histories),
        F.HISTORY_RATINGS: tf.fill([n, len(histories[0])], float("nan")),
    }


def test_release_year_is_parsed_inside_the_model() -> None:
    years = release_year(tf.constant(["01-Jan-1995", "", "1997", "unknown"]))
    assert years.numpy().tolist() == [1995.0, 0.0, 1997.0, 0.0]


def test_unknown_user_zip_and_empty_history_give_finite_embeddings(model) -> None:
    batch = queries(["no-such-user", "1"], [[PAD] * 3, ["1", PAD, PAD]], ["XYZ99", ""])
    vectors = model.query_tower(batch).numpy()
    assert vectors.shape == (2, CONFIG.embedding_dim)
    assert np.isfinite(vectors).all()


def test_normalized_towers_give_unit_rows(model) -> None:
    batch = queries(["1", "2", "unknown"], [["1", "2", "3"], [PAD] * 3, ["8", "7", PAD]])
    items = item_columns(tiny_catalog(), ["1", "5", "8"])
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
    base = item_columns(tiny_catalog(), ["3", "3", "3"])
    base[F.GENRES] = np.array(["Drama", "Action", "Drama"])
    base[F.RELEASE_DATE] = np.array(["01-Jan-1975", "01-Jan-1975", "01-Jan-1995"])
    vectors = model.candidate_tower(base).numpy()
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)  # genre differs
    assert not np.allclose(vectors[0], vectors[2], atol=1e-4)  # release year differs


def test_embed_in_batches_equals_one_call(model) -> None:
    ids = [str(i) for i in range(1, 9)]
    columns = item_columns(tiny_catalog(), ids)
    batched = embed(model.candidate_tower, columns, batch_size=3)
    whole = model.candidate_tower({k: tf.constant(v) for k, v in columns.items()}).numpy()
    assert batched.shape == (8, CONFIG.embedding_dim)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-6)


def test_two_tower_model_learns_on_a_tiny_dataset() -> None:
    data = tiny_catalog()
    tf.keras.utils.set_random_seed(CONFIG.seed)
    model = build_model(vocabularies(data), CONFIG)
    split = leave_last_out(data, HISTORY_LENGTH)
    before = model.query_tower(split.test_queries).numpy()
    losses = fit(model, split.train, CONFIG)
    assert len(losses) == CONFIG.epochs
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    after = model.query_tower(split.test_queries).numpy()
    assert not np.allclose(before, after, atol=1e-3)
