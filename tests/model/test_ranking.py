"""The ranking stage: multi-task training, export with raw features, and the app's use."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from app.artifacts import ModelVersion
from app.db.queries import UserProfile
from app.inputs import Hit, profile_columns
from app.ranking import rank
from models import features as F
from models.layers import RatingHistorySummary
from tests.model.test_towers import CONFIG as TOWER_CONFIG
from tests.model.test_towers import tiny_catalog
from tests.versions import bare_version
from training import export
from training.dataset import item_features, leave_last_out, vocabularies
from training.train import build_model, build_ranker, fit

pytestmark = pytest.mark.model

RATINGS = [5.0, 1.0, 4.0, 2.0, 3.0, 5.0]
NAN = float("nan")


def catalog_with_ratings():
    catalog = tiny_catalog()
    catalog.ratings = {u: list(RATINGS) for u in catalog.sequences}
    return catalog


@pytest.fixture(scope="module", params=[True, False], ids=["dcn", "no-cross"])
def trained(request):
    tf.keras.utils.set_random_seed(TOWER_CONFIG.seed)
    catalog = catalog_with_ratings()
    split = leave_last_out(catalog, TOWER_CONFIG.history_length)
    config = TOWER_CONFIG.model_copy(deep=True)
    config.ranker = config.ranker.model_copy(
        update={
            "embedding_dim": 8,
            "hidden_dim": 16,
            "use_cross": request.param,
            "rating_blend": 0.5,
            "epochs": 8,
        }
    )
    vocab = vocabularies(catalog)
    retrieval = build_model(vocab, config)
    fit(retrieval, split.train, config)
    mean = float(np.nanmean(split.train[F.RATING]))
    ranker = build_ranker(vocab, config, mean, retrieval)
    losses = fit(ranker, split.train, config, epochs=config.ranker.epochs)
    return catalog, split, config, retrieval, ranker, losses


def pairs() -> dict[str, tf.Tensor]:
    return {
        F.USER_ID: tf.constant(["1", "2", "stranger"]),
        F.AGE: tf.constant([25, 32, 0], dtype=tf.int64),
        F.GENDER: tf.constant(["F", "M", ""]),
        F.OCCUPATION: tf.constant(["writer", "doctor", "x"]),
        F.ZIP_CODE: tf.constant(["10001", "20001", ""]),
        F.HISTORY: tf.constant([["2", "3", ""], ["4", "", ""], ["", "", ""]]),
        F.HISTORY_RATINGS: tf.constant([[5.0, 1.0, NAN], [NAN, NAN, NAN], [NAN] * 3]),
        F.ITEM_ID: tf.constant(["5", "6", "new-item"]),
        F.GENRES: tf.constant(["Action", "Comedy|Drama", ""]),
        F.RELEASE_DATE: tf.constant(["01-Jan-1975", "", "1999"]),
        F.TITLE: tf.constant(["Film number 5 (1975)", "Film number 6", ""]),
    }


def test_multi_task_training_lowers_the_loss(trained) -> None:
    *_, losses = trained
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_rating_head_learns_the_ratings(trained) -> None:
    catalog, split, *_, ranker, _ = trained
    predicted = ranker(split.train)["rating"].numpy()
    truth = split.train[F.RATING]
    baseline = np.sqrt(np.mean((truth - truth.mean()) ** 2))
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < baseline


def test_score_adds_retrieval_logit_and_rating_blend(trained) -> None:
    _, _, config, retrieval, ranker, _ = trained
    features = pairs()
    out = ranker(features)
    base = (
        tf.reduce_sum(
            retrieval.query_tower({k: features[k] for k in F.QUERY_FEATURES})
            * retrieval.candidate_tower({k: features[k] for k in F.CANDIDATE_FEATURES}),
            axis=1,
        )
        / config.temperature
    )
    own_q, own_c = ranker.embed(features)
    own = tf.reduce_sum(own_q * own_c, axis=1) / config.ranker.temperature
    blend = config.ranker.rating_blend * (out["rating"] - ranker.rating_mean)
    np.testing.assert_allclose(out["score"], base + own + blend, rtol=1e-5, atol=1e-5)


def test_exported_ranker_matches_in_memory_on_raw_features(trained, tmp_path: Path) -> None:
    _, _, config, _, ranker, _ = trained
    export.save_ranker(ranker, config.history_length, tmp_path / "ranker")
    serve = tf.saved_model.load(str(tmp_path / "ranker")).signatures["serving_default"]
    loaded, in_memory = serve(**pairs()), ranker(pairs())
    for name in ("score", "rating"):
        np.testing.assert_allclose(loaded[name].numpy(), in_memory[name].numpy(), atol=1e-5)


def test_app_rank_orders_candidates_by_the_ranker_score(trained, tmp_path: Path) -> None:
    catalog, _, config, _, ranker, _ = trained
    export.save_ranker(ranker, config.history_length, tmp_path / "ranker")
    fn = tf.saved_model.load(str(tmp_path / "ranker")).signatures["serving_default"]
    version = _version(catalog, config, fn)
    profile = UserProfile("1", 25, "F", "writer", "10001", ["2", "3"], [1.0, None])
    candidates = [Hit(item_id=i, score=0.0) for i in ("4", "5", "6", "7", "8")]
    [ranked] = rank(version, profile_columns(version, [profile]), [candidates], [3])
    expected = ranker(_pairs_for(catalog, config, profile, [h.item_id for h in candidates]))
    order = np.argsort(-expected["score"].numpy(), kind="stable")[:3]
    assert [h.item_id for h in ranked] == [candidates[i].item_id for i in order]
    np.testing.assert_allclose(
        [h.score for h in ranked], expected["score"].numpy()[order], atol=1e-5
    )


def _version(catalog, config, fn) -> ModelVersion:
    spec = F.serving_spec(config.history_length)
    return bare_version(
        manifest={"feature_spec": spec},
        item_ids=np.array(sorted(catalog.items), dtype=object),
        inputs={n: v["dtype"] for n, v in spec["inputs"].items()},
        history_feature=F.HISTORY,
        history_length=config.history_length,
        history_pad=F.HISTORY_PAD,
        history_ratings_feature=F.HISTORY_RATINGS,
        ranker_fn=fn,
        ranking_candidates=5,
        candidate_features={i: item_features(catalog.items[i]) for i in catalog.items},
    )


def _pairs_for(catalog, config, profile: UserProfile, items: list[str]) -> dict:
    length = config.history_length
    history = (profile.history + [F.HISTORY_PAD] * length)[:length]
    stars = [NAN if r is None else r for r in profile.history_ratings]
    ratings = (stars + [NAN] * length)[:length]
    n = len(items)
    rows = [item_features(catalog.items[i]) for i in items]
    return {
        F.USER_ID: tf.constant([profile.user_id] * n),
        F.AGE: tf.constant([profile.age] * n, dtype=tf.int64),
        F.GENDER: tf.constant([profile.gender] * n),
        F.OCCUPATION: tf.constant([profile.occupation] * n),
        F.ZIP_CODE: tf.constant([profile.zip_code] * n),
        F.HISTORY: tf.constant([history] * n),
        F.HISTORY_RATINGS: tf.constant([ratings] * n, dtype=tf.float32),
        **{name: tf.constant([r[name] for r in rows]) for name in F.CANDIDATE_FEATURES},
    }


def test_ranking_nothing_returns_empty_lists(trained) -> None:
    catalog, _, config, *_ = trained
    version = dataclasses.replace(_version(catalog, config, None))
    users = profile_columns(version, [UserProfile("1", 1, "F", "x", "1")])
    assert rank(version, users, [[]], [5]) == [[]]


def test_rating_history_summary_against_hand_computed_values() -> None:
    summary = RatingHistorySummary(3.0, recent=2, prior=3.0)
    ratings = tf.constant([[5.0, 4.0, NAN, 1.0], [NAN] * 4, [NAN, 4.0, NAN, NAN]], dtype=tf.float32)
    expected = [
        # mean above 3, shrunk (3 pseudo-ratings), newest, mean of newest 2, log(1 + count)
        [1 / 3, 1 / 6, 2.0, 1.5, np.log(4.0)],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 1 / 4, 0.0, 1.0, np.log(2.0)],
    ]
    np.testing.assert_allclose(summary(ratings).numpy(), expected, rtol=1e-6, atol=1e-7)
