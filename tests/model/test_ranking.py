"""The ranking stage: multi-task training, export as query side + item vectors, and the
app's fast path checked against the full pairs model on the same raw inputs."""

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from app.artifacts import ArtifactError, load_version
from app.candidates import retrieve
from app.catalog import CatalogConfig, Kind
from app.db.queries import UserProfile
from app.inputs import profile_columns
from app.manifest import ITEM_TOWER, QUERY_TOWER
from app.ranking import rank
from app.serving import Ranked, RecommendRequest, recommend_batch
from app.version import ModelVersion
from models import features as F
from models.layers import RatingHistorySummary
from tests.model.test_index_and_export import profiles, publish
from tests.model.test_towers import CONFIG as TOWER_CONFIG
from tests.model.test_towers import tiny_catalog
from training import pipeline
from training.contract import build_contract
from training.dataset import Catalog, example_columns, leave_last_out, model_values
from training.export import RATING_INPUTS
from training.train import build_model, build_ranker, fit

pytestmark = pytest.mark.model

RATINGS = [5.0, 1.0, 4.0, 2.0, 3.0, 5.0]
NAN = float("nan")
# (DCN cross layer in the rating head, rating blend): the blend is what makes the app
# call the rating head; the cross layer only changes that head.
VARIANTS = {"dcn-blend": (True, 0.5), "plain-blend": (False, 0.5), "dcn-no-blend": (True, 0.0)}


def catalog_with_ratings() -> Catalog:
    return tiny_catalog(ratings={str(u): list(RATINGS) for u in range(1, 7)})


def stored_items(catalog: Catalog) -> dict[str, dict]:
    """Each item's attributes by id, as the catalog stores them."""
    ids = catalog.item_ids.tolist()
    return {item: {n: c[row] for n, c in catalog.items.items()} for row, item in enumerate(ids)}


@pytest.fixture(scope="module", params=list(VARIANTS))
def trained(request) -> pipeline.Trained:
    use_cross, blend = VARIANTS[request.param]
    tf.keras.utils.set_random_seed(TOWER_CONFIG.seed)
    catalog = catalog_with_ratings()
    contract = build_contract(catalog, TOWER_CONFIG.history_length)
    split = leave_last_out(catalog, contract)
    config = TOWER_CONFIG.model_copy(deep=True)
    config.ranker = config.ranker.model_copy(
        update={
            "embedding_dim": 8,
            "hidden_dim": 16,
            "use_cross": use_cross,
            "rating_blend": blend,
            "epochs": 8,
            "candidates": 6,  # of 8 items: a deep request ranks more than the candidates
        }
    )
    retrieval = build_model(contract, config)
    fit(retrieval, split, config)
    mean = float(np.nanmean(split.train_pairs()[2]))
    ranker = build_ranker(contract, config, mean, retrieval)
    losses = {"ranker": fit(ranker, split, config, epochs=config.ranker.epochs)}
    return pipeline.Trained(config, catalog, split, retrieval, ranker, losses)


@pytest.fixture(scope="module")
def published(trained: pipeline.Trained, tmp_path_factory) -> Path:
    """The version folder `recsys train` would publish for this model."""
    return publish(tmp_path_factory.mktemp("artifacts"), trained)


@pytest.fixture(scope="module")
def live(published: Path) -> ModelVersion:
    return load_version(published.parent, published.name)


def full_ranker(folder: Path):  # type: ignore[no-untyped-def]
    """A version's full pairs model (ranker/): raw (user, item) features in, score out."""
    return tf.saved_model.load(str(folder / "ranker")).signatures["serving_default"]


@pytest.fixture(scope="module")
def full(published: Path):  # type: ignore[no-untyped-def]
    return full_ranker(published)


def pairs() -> dict[str, tf.Tensor]:
    return {
        F.USER_ID: tf.constant(["1", "2", "stranger"]),
        "age": tf.constant([25, 32, NAN], dtype=tf.float32),
        "gender": tf.constant(["F", "M", ""]),
        "occupation": tf.constant(["writer", "doctor", "x"]),
        "zip_code": tf.constant(["10001", "20001", ""]),
        F.HISTORY: tf.constant([["2", "3", ""], ["4", "", ""], ["", "", ""]]),
        F.HISTORY_RATINGS: tf.constant([[5.0, 1.0, NAN], [NAN, NAN, NAN], [NAN] * 3]),
        F.ITEM_ID: tf.constant(["5", "6", "new-item"]),
        "genres": tf.constant(["Action", "Comedy|Drama", ""]),
        "release_date": tf.constant(["01-Jan-1975", "", "1999"]),
        "title": tf.constant(["Film number 5 (1975)", "Film number 6", ""]),
    }


def test_multi_task_training_lowers_the_loss(trained) -> None:
    losses = trained.losses["ranker"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_rating_head_learns_the_ratings(trained) -> None:
    train = example_columns(trained.split, trained.split.train_positions)
    predicted = trained.ranker(train)["rating"].numpy()
    truth = train[F.RATING]
    baseline = np.sqrt(np.mean((truth - truth.mean()) ** 2))
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < baseline


def test_score_adds_retrieval_logit_and_rating_blend(trained) -> None:
    config, retrieval, ranker = trained.config, trained.retrieval, trained.ranker
    features, contract = pairs(), ranker.contract
    out = ranker(features)
    base = (
        tf.reduce_sum(
            retrieval.query_tower({k: features[k] for k in contract.query_features})
            * retrieval.candidate_tower({k: features[k] for k in contract.candidate_features}),
            axis=1,
        )
        / config.temperature
    )
    own_q, own_c = ranker.embed(features)
    own = tf.reduce_sum(own_q * own_c, axis=1) / config.ranker.temperature
    # The rating served (from the split halves) is the rating head as trained.
    rating = ranker.predict_rating(features, own_q, own_c)
    np.testing.assert_allclose(out["rating"], rating, rtol=1e-5, atol=1e-5)
    blend = config.ranker.rating_blend * (rating - ranker.rating_mean)
    np.testing.assert_allclose(out["score"], base + own + blend, rtol=1e-5, atol=1e-5)


def test_exported_ranker_matches_in_memory_on_raw_features(trained, full) -> None:
    loaded, in_memory = full(**pairs()), trained.ranker(pairs())
    for name in ("score", "rating"):
        np.testing.assert_allclose(loaded[name].numpy(), in_memory[name].numpy(), atol=1e-5)


def test_exported_halves_compose_to_the_ranker(trained, published: Path) -> None:
    """Query side (user features only) + items (item features only) + the rating head
    on the two halves give the pairs model's score and rating, unknown ids included."""
    signatures = tf.saved_model.load(str(published / QUERY_TOWER)).signatures
    item_side = tf.saved_model.load(str(published / ITEM_TOWER)).signatures["items"]
    features, ranker = pairs(), trained.ranker
    query_features, candidate_features = (
        ranker.contract.query_features,
        ranker.contract.candidate_features,
    )
    users = signatures["serving_default"](**{k: features[k] for k in query_features})
    items = item_side(**{k: features[k] for k in candidate_features})
    halves = {name: users[name] if name in users else items[name] for name in RATING_INPUTS}
    rating = signatures["rating"](**halves)["rating"]
    relevance = tf.reduce_sum(users["ranking"] * items["ranking"], axis=1)
    score = relevance + trained.config.ranker.rating_blend * (rating - ranker.rating_mean)
    expected = ranker(features)
    np.testing.assert_allclose(rating, expected["rating"], atol=1e-5)
    np.testing.assert_allclose(score, expected["score"], atol=1e-5)
    embedding = trained.retrieval.query_tower({k: features[k] for k in query_features})
    np.testing.assert_allclose(users["embedding"], embedding, atol=1e-6)


def as_inputs(values: list, kind: Kind) -> np.ndarray:
    """Attribute values as the catalog stores them (numbers as float64, NaN for None)
    turned into model inputs by training's own conversion."""
    if kind == Kind.numeric:
        stored = np.array([NAN if v is None else float(v) for v in values], dtype=np.float64)
    else:
        stored = np.empty(len(values), dtype=object)
        stored[:] = values
    return model_values(stored, kind)


def pairs_for(
    profile: UserProfile, config: CatalogConfig, length: int, ids: list[str], items: dict
) -> dict[str, tf.Tensor]:
    """The pairs model's raw inputs for one user and each item of `ids` (`items`: stored
    attributes by id), built as training builds them (not by the app's profile_columns)."""
    n, stars = len(ids), [NAN if r is None else r for r in profile.history_ratings]
    columns = {
        F.USER_ID: np.array([profile.user_id] * n, dtype=object),
        F.HISTORY: np.array([(profile.history + [F.HISTORY_PAD] * length)[:length]] * n),
        F.HISTORY_RATINGS: np.array([(stars + [NAN] * length)[:length]] * n, np.float32),
        F.ITEM_ID: np.array(ids, dtype=object),
    }
    for spec in config.user_features():
        columns[spec.name] = as_inputs([profile.attributes.get(spec.name)] * n, spec.kind)
    for spec in config.item_features():
        columns[spec.name] = as_inputs([items[i].get(spec.name) for i in ids], spec.kind)
    return {name: tf.constant(values) for name, values in columns.items()}


def best_first(scores: tf.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the k best scores, best first, and those scores."""
    order = np.argsort(-scores.numpy(), kind="stable")[:k]
    return order, scores.numpy()[order]


def first_stage(version: ModelVersion, requests: Sequence[RecommendRequest]) -> list[np.ndarray]:
    """The candidate rows retrieval hands the ranker for each request."""
    columns = profile_columns(version, [r.profile for r in requests])
    queries = version.query_fn(columns)["embedding"]
    assert version.ranking is not None
    depth = [max(r.k, version.ranking.candidates) for r in requests]
    excluded = [version.rows(r.exclude) for r in requests]
    return [rows for rows, _ in retrieve(version, queries, depth, excluded)]


def assert_fast_path_matches_the_full_ranker(
    full, version: ModelVersion, requests: list[RecommendRequest], items: dict
) -> list[Ranked]:
    """recommend_batch (query side + precomputed item vectors) gives each request the same
    items, order and scores as the version's `full_ranker` on the same (user, candidate)
    raw inputs (`items`: each item's stored attributes by id)."""
    served = recommend_batch(version, requests)
    config = version.manifest.catalog
    assert config is not None
    for request, ranked, rows in zip(requests, served, first_stage(version, requests), strict=True):
        ids = version.item_ids[rows].tolist()
        pairs = pairs_for(request.profile, config, version.history_length, ids, items)
        order, scores = best_first(full(**pairs)["score"], request.k)
        assert ranked.item_ids(version) == [ids[i] for i in order]
        np.testing.assert_allclose(ranked.scores, scores, rtol=0, atol=1e-5)
    return served


def test_fast_path_equals_the_full_ranker(trained, full, live: ModelVersion) -> None:
    users = profiles()
    requests = [
        RecommendRequest(users[0], 3, ("2",)),  # 6 candidates ranked, 3 returned
        RecommendRequest(users[1], 20, ("1", "no-such-item")),  # k past the catalog
        RecommendRequest(users[2], 6),
    ]
    items = stored_items(trained.catalog)
    served = assert_fast_path_matches_the_full_ranker(full, live, requests, items)
    assert [len(r.rows) for r in served] == [3, 7, 6]
    assert live.ranking is not None
    blend = trained.config.ranker.rating_blend
    assert live.ranking.rating_blend == blend
    assert (live.ranking.rating_fn is None) == (live.ranking.rating_items is None) == (not blend)


def test_rank_orders_each_requests_candidates_by_the_ranker(trained, live) -> None:
    """Requests with different numbers of candidates in one batch: each gets its own,
    ordered by the in-memory pairs model; the shorter one's padding never shows."""
    candidates = [live.rows(["4", "5", "6", "7", "8"]), live.rows(["3", "6"])]
    users = profiles()[:2]
    outputs = live.query_fn(profile_columns(live, users))
    assert live.ranking is not None
    found = [(rows, np.zeros(len(rows), np.float32)) for rows in candidates]
    ks = [3, 5]
    ranked = rank(live.ranking, outputs, found, ks)
    assert [len(rows) for rows, _ in ranked] == [3, 2]
    items, config = stored_items(trained.catalog), trained.catalog.config
    for profile, rows, (got, scores), k in zip(users, candidates, ranked, ks, strict=True):
        ids = live.item_ids[rows].tolist()
        pairs = pairs_for(profile, config, live.history_length, ids, items)
        order, expected = best_first(trained.ranker(pairs)["score"], k)
        assert got.tolist() == rows[order].tolist()
        np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_ranking_nothing_returns_empty_lists(live: ModelVersion) -> None:
    users = profiles()[:2]
    outputs = live.query_fn(profile_columns(live, users))
    assert live.ranking is not None
    nothing = (np.empty(0, np.int64), np.empty(0, np.float32))
    assert [len(rows) for rows, _ in rank(live.ranking, outputs, [nothing] * 2, [5, 5])] == [0, 0]
    everything = live.item_ids.tolist()
    [ranked] = recommend_batch(live, [RecommendRequest(users[0], 5, everything)])
    assert ranked.rows.size == 0 and ranked.scores.size == 0


def test_item_vectors_of_the_wrong_length_are_refused(published: Path, tmp_path: Path) -> None:
    copy = tmp_path / published.name
    shutil.copytree(published, copy)
    vectors = copy / "item_vectors" / "ranking.npy"
    np.save(vectors, np.load(vectors)[:-1])
    with pytest.raises(ArtifactError, match=r"ranking\.npy: shape \(7, \d+\), expected 8 rows"):
        load_version(tmp_path, copy.name, verify=False)


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
