"""The feature contract: what `build_contract` learns from a catalog, what each feature
encoder does with raw values, and a catalog unlike MovieLens (no user file, every kind of
item feature) trained, exported and served end to end."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from app.artifacts import check_inputs, load_live
from app.catalog import Kind, parse_catalog_config, read_catalog_config
from app.db.queries import UserProfile
from app.inputs import call_model, profile_columns
from app.manifest import ITEM_TOWER, QUERY_TOWER, RANKER, FeatureSpec
from app.serving import RecommendRequest, recommend_batch
from models import features as F
from models.layers import FeatureEncoder, year_of
from tests.model.test_index_and_export import publish
from training import export, pipeline
from training.config import TrainConfig
from training.contract import build_contract
from training.dataset import Catalog, item_columns, leave_last_out, query_columns
from training.train import build_model, build_ranker, embed, fit

pytestmark = pytest.mark.model

CATALOGS = Path(__file__).resolve().parents[2] / "training" / "catalogs"
NAN = float("nan")

# --- build_contract --------------------------------------------------------------------


def test_movielens_contract_has_sorted_vocabularies_prefixes_and_the_configs_edges() -> None:
    config = read_catalog_config(CATALOGS / "movielens-100k.toml")
    users = {
        "2": {"age": 24, "gender": "M", "occupation": "writer", "zip_code": "94110"},
        "10": {"age": None, "gender": "F", "occupation": None, "zip_code": "85711"},
        "1": {"age": 53, "gender": None, "occupation": "doctor", "zip_code": "94043"},
    }
    items = {
        "b": {"genres": "Drama|Action", "release_date": "01-Jan-1995", "title": "Heat"},
        "a": {"genres": None, "release_date": None, "title": None, "url": "http://x"},
    }
    catalog = Catalog.from_records(config, users, items, {})
    contract = build_contract(catalog, history_length=7)
    assert contract.user_ids == ["1", "2", "10"] and contract.item_ids == ["a", "b"]
    assert contract.history_length == 7
    by_name = {f.name: f for f in contract.user_features + contract.item_features}
    user_side, item_side = ["age", "gender", "occupation", "zip_code"], ["genres", "release_date"]
    assert list(by_name) == [*user_side, *item_side, "title"]  # url: stored, not learned
    assert by_name["gender"].vocabulary == ["F", "M"]  # missing values are no category
    assert by_name["occupation"].vocabulary == ["doctor", "writer"]
    assert by_name["zip_code"].vocabulary == ["857", "940", "941"]  # the first 3 characters
    assert by_name["zip_code"].prefix == 3
    assert by_name["genres"].vocabulary == ["Action", "Drama"]
    assert by_name["age"].boundaries == [18, 25, 35, 45, 50, 56]  # the config's, kept
    assert by_name["release_date"].boundaries == list(range(1930, 2001, 5))
    assert by_name["title"].corpus == ["", "Heat"]  # item rows: a, b
    # Dimensions the config gives win over the default.
    dims = {name: by_name[name].dim for name in ("age", "gender", "zip_code", "genres", "title")}
    assert dims == {"age": 4, "gender": 2, "zip_code": 8, "genres": 16, "title": 16}


def shop_config(**tag_options):  # type: ignore[no-untyped-def]
    """A shop without a user file; one item feature of every kind."""
    return parse_catalog_config(
        {
            "name": "shop",
            "items": {
                "file": "products.csv",
                "id": "sku",
                "fields": [
                    {"name": "category"},
                    {
                        "name": "tags",
                        "kind": "multi_categorical",
                        "separator": ";",
                        "missing": ["none"],
                        **tag_options,
                    },
                    {"name": "price", "kind": "numeric", "buckets": 4},
                    {"name": "name", "kind": "text", "max_tokens": 50},
                    {"name": "launched", "kind": "date", "boundaries": [2015, 2020]},
                    {"name": "supplier", "feature": False},
                ],
                "metadata": ["name", "tags", "price"],
            },
            "interactions": {"file": "orders.csv", "user": "customer", "item": "sku"},
        }
    )


def test_quantile_edges_multi_values_and_default_dims_come_from_the_data() -> None:
    items = {
        f"p{i}": {"category": "mugs" if i % 2 else "cups", "tags": "gift;kitchen", "price": i}
        for i in range(1, 10)  # prices 1..9
    }
    items["p0"] = {"category": None, "tags": "none;sale;", "price": None, "launched": "2018"}
    catalog = Catalog.from_records(shop_config(), {"u": {}}, items, {})
    contract = build_contract(catalog, history_length=2)
    assert contract.user_features == []
    assert contract.query_features == (F.USER_ID, F.HISTORY, F.HISTORY_RATINGS)
    category, tags, price, name, launched = contract.item_features
    assert category.vocabulary == ["cups", "mugs"]
    assert tags.vocabulary == ["gift", "kitchen", "sale"]  # split; "none" and "" dropped
    # 4 buckets over the known prices 1..9: quartiles 3, 5, 7 (the missing one is ignored).
    assert price.boundaries == [3.0, 5.0, 7.0]
    assert launched.boundaries == [2015, 2020]
    # No item has a name: the tokenizer adapts to a placeholder rather than to nothing.
    assert name.corpus == ["none"] and name.max_tokens == 50
    assert [category.dim, tags.dim, price.dim] == [
        F.default_dim(2),
        F.default_dim(3),
        F.default_dim(5),  # 4 buckets and the missing one
    ]
    assert name.dim == 16 and launched.dim == F.default_dim(4)
    assert F.default_dim(2) == 7 and F.default_dim(16) == 12 and F.default_dim(10**9) == 64


def test_dates_without_boundaries_get_quantiles_of_their_years() -> None:
    config = read_catalog_config(CATALOGS / "movielens-latest-small.toml")
    items = {"1": {"year": "1990"}, "2": {"year": "2000"}, "3": {"year": None}}
    contract = build_contract(Catalog.from_records(config, {}, items, {}), history_length=2)
    year = next(f for f in contract.item_features if f.name == "year")
    assert year.boundaries == [float(y) for y in range(1991, 2000)]  # deciles of 1990, 2000


# --- FeatureEncoder on raw values ------------------------------------------------------


def rows(encoder: FeatureEncoder, indices: list[int]) -> np.ndarray:
    """The encoder's embedding rows at `indices`: what its output must be made of."""
    return encoder.embedding.embeddings.numpy()[indices]


def encode(feature: F.Feature, values: list) -> tuple[FeatureEncoder, np.ndarray]:
    encoder = FeatureEncoder(feature)
    dtype = tf.float32 if feature.kind == Kind.numeric else tf.string
    return encoder, encoder(tf.constant(values, dtype=dtype)).numpy()


def test_categorical_values_share_one_row_when_unseen() -> None:
    feature = F.Feature("color", Kind.categorical, dim=3, vocabulary=["blue", "red"])
    encoder, out = encode(feature, ["blue", "red", "green", "", "purple"])
    # Row 0 is the out-of-vocabulary row, then the vocabulary in order.
    np.testing.assert_array_equal(out, rows(encoder, [1, 2, 0, 0, 0]))


def test_categorical_prefix_is_taken_inside_the_model() -> None:
    feature = F.Feature("zip_code", Kind.categorical, dim=3, vocabulary=["857", "940"], prefix=3)
    encoder, out = encode(feature, ["85711", "94043", "857", "12345"])
    np.testing.assert_array_equal(out, rows(encoder, [1, 2, 1, 0]))


def test_multi_valued_features_average_their_values() -> None:
    feature = F.Feature(
        "tags", Kind.multi_categorical, dim=3, vocabulary=["gift", "kitchen"], separator=";"
    )
    encoder, out = encode(feature, ["gift;kitchen", "kitchen", "gift;unknown", ""])
    gift, kitchen, oov = rows(encoder, [1, 2, 0])
    np.testing.assert_allclose(
        out, [(gift + kitchen) / 2, kitchen, (gift + oov) / 2, oov], rtol=1e-6
    )


def test_multi_valued_parts_are_read_as_their_vocabulary_was_built() -> None:
    """A file writing "kitchen; gift" stores it so; build_contract's vocabulary holds
    "gift" (FieldSpec.values_of strips each part), so the model must read " gift" as
    "gift" too, not as an unseen value."""
    feature = F.Feature(
        "tags", Kind.multi_categorical, dim=3, vocabulary=["gift", "kitchen"], separator=";"
    )
    _, out = encode(feature, ["kitchen;gift", "kitchen; gift"])
    np.testing.assert_allclose(out[1], out[0], rtol=1e-6)


def test_numbers_are_bucketed_with_missing_values_in_a_bucket_of_their_own() -> None:
    feature = F.Feature("price", Kind.numeric, dim=3, boundaries=[10.0, 20.0])
    encoder, out = encode(feature, [5.0, 10.0, 15.0, 25.0, NAN, -1.0])
    # Buckets (-inf, 10), [10, 20), [20, inf) are rows 1-3; NaN is row 0.
    np.testing.assert_array_equal(out, rows(encoder, [1, 2, 2, 3, 0, 1]))


def test_dates_are_bucketed_by_year_and_no_year_is_missing() -> None:
    feature = F.Feature("launched", Kind.date, dim=3, boundaries=[1990.0, 2000.0])
    values = ["01-Jan-1985", "1995", "2009-06-15", "1234567890", "", "unknown"]
    encoder, out = encode(feature, values)
    np.testing.assert_array_equal(out, rows(encoder, [1, 2, 3, 3, 0, 0]))


def test_text_is_the_mean_of_its_words() -> None:
    feature = F.Feature("name", Kind.text, dim=3, max_tokens=10, corpus=["red mug", "blue mug"])
    encoder, out = encode(feature, ["red mug", "RED, Mug!", "mug", "", "green"])
    vocabulary = encoder.tokens.get_vocabulary()  # "" (padding), "[UNK]", then by count
    red, mug, unknown = rows(encoder, [vocabulary.index(w) for w in ("red", "mug", "[UNK]")])
    np.testing.assert_allclose(out[:3], [(red + mug) / 2, (red + mug) / 2, mug], rtol=1e-6)
    np.testing.assert_array_equal(out[3], np.zeros(3))  # no words: nothing to average
    np.testing.assert_allclose(out[4], unknown, rtol=1e-6)


def test_year_of_reads_dates_years_and_unix_seconds() -> None:
    values = ["01-Jan-1995", "2009-06-15", "1995", "2009-06-15T10:00:00Z", "1234567890", "", "n/a"]
    years = year_of(tf.constant(values)).numpy()
    np.testing.assert_array_equal(years[:4], [1995.0, 2009.0, 1995.0, 2009.0])
    assert years[4] == 2009.0  # 1234567890 s: 2009-02-13 (UTC), the calendar year
    # Midnight on New Year's Day is in the new year, a second before it in the old one.
    edges = year_of(tf.constant(["946684800", "946684799"])).numpy()
    np.testing.assert_array_equal(edges, [2000.0, 1999.0])
    assert np.isnan(years[5:]).all()


# --- A catalog without users, every kind of item feature, end to end ---------------------

CONFIG = TrainConfig(
    history_length=3,
    embedding_dim=8,
    hidden_dim=16,
    batch_size=16,
    learning_rate=0.05,
    epochs=2,
    popular_items=5,
)
CONFIG.ranker = CONFIG.ranker.model_copy(
    update={"embedding_dim": 8, "hidden_dim": 16, "epochs": 2, "candidates": 6, "rating_blend": 0.5}
)


def shop_catalog() -> Catalog:
    """10 products, 12 customers with 5 orders each; no ratings, no customer attributes."""
    rng = np.random.default_rng(3)
    items = {
        f"sku-{i:02d}": {
            "category": ["mugs", "cups", "plates"][i % 3],
            "tags": ["gift;kitchen", "kitchen", None, "sale;gift"][i % 4],
            "price": None if i == 7 else 2.5 * i,
            "name": f"{['red', 'blue'][i % 2]} item {i}",
            "launched": None if i == 3 else f"20{10 + i}-03-01",
            "supplier": "acme",
        }
        for i in range(10)
    }
    ids = sorted(items)
    users = {f"c{u}": {} for u in range(12)}
    orders = {u: [ids[i] for i in rng.permutation(10)[:5]] for u in users}
    return Catalog.from_records(shop_config(), users, items, orders)


@pytest.fixture(scope="module")
def trained() -> pipeline.Trained:
    tf.keras.utils.set_random_seed(CONFIG.seed)
    catalog = shop_catalog()
    contract = build_contract(catalog, CONFIG.history_length)
    split = leave_last_out(catalog, contract)
    retrieval = build_model(contract, CONFIG)
    losses = {"retrieval": fit(retrieval, split, CONFIG)}
    ranker = build_ranker(contract, CONFIG, 0.0, retrieval)  # no ratings: mean 0, as the pipeline
    losses["ranker"] = fit(ranker, split, CONFIG, epochs=CONFIG.ranker.epochs)
    return pipeline.Trained(CONFIG, catalog, split, retrieval, ranker, losses)


def test_both_models_train_on_a_catalog_without_user_features(trained) -> None:
    assert trained.retrieval.contract.user_features == []
    assert [f.kind for f in trained.retrieval.contract.item_features] == [
        Kind.categorical,
        Kind.multi_categorical,
        Kind.numeric,
        Kind.text,
        Kind.date,
    ]
    for losses in trained.losses.values():
        assert len(losses) == 2 and np.isfinite(losses).all()


def test_exported_signatures_take_exactly_the_contracts_inputs(trained, tmp_path: Path) -> None:
    contract = trained.retrieval.contract
    names = export.save_towers(trained.retrieval, trained.ranker, tmp_path)
    assert names == ["rating", "serving_default"]
    query = tf.saved_model.load(str(tmp_path / QUERY_TOWER)).signatures["serving_default"]
    inputs = query.structured_input_signature[1]
    assert set(inputs) == {F.USER_ID, F.HISTORY, F.HISTORY_RATINGS} == set(contract.query_features)
    assert inputs[F.HISTORY].shape.as_list() == [None, 3]
    items = tf.saved_model.load(str(tmp_path / ITEM_TOWER)).signatures["items"]
    item_inputs = items.structured_input_signature[1]
    assert set(item_inputs) == {"item_id", "category", "tags", "price", "name", "launched"}
    assert item_inputs["price"].dtype == tf.float32 and item_inputs["launched"].dtype == tf.string
    # The exported sides compute what the in-memory towers do, on the catalog's own inputs.
    split = trained.split
    test = query_columns(split, split.test_positions, split.test_user_rows)
    served = call_model(query, test)
    np.testing.assert_allclose(
        served["embedding"], trained.retrieval.query_tower(test).numpy(), atol=1e-6
    )
    every = item_columns(trained.catalog, np.arange(10), contract)
    vectors = export.item_vectors(tmp_path / ITEM_TOWER, every)
    np.testing.assert_allclose(
        vectors["embedding"], embed(trained.retrieval.candidate_tower, every, 4), atol=1e-6
    )
    spec = FeatureSpec.model_validate(contract.serving_spec())
    assert spec.user_attributes == []
    check_inputs(tmp_path / "manifest.json", spec)


def test_the_full_ranker_takes_the_pairs_of_the_contract(trained, tmp_path: Path) -> None:
    export.save_ranker(trained.ranker, tmp_path / RANKER)
    serve = tf.saved_model.load(str(tmp_path / RANKER)).signatures["serving_default"]
    expected = set(trained.ranker.contract.ranker_signature())
    assert set(serve.structured_input_signature[1]) == expected
    assert expected == {F.USER_ID, F.HISTORY, F.HISTORY_RATINGS} | {
        "item_id",
        "category",
        "tags",
        "price",
        "name",
        "launched",
    }


def test_a_published_shop_version_serves_customers_without_attributes(
    trained, tmp_path: Path
) -> None:
    folder = publish(tmp_path, trained)
    live = load_live(tmp_path)
    assert live.manifest.catalog == trained.catalog.config
    assert live.manifest.feature_spec.user_attributes == []
    assert set(live.inputs) == {F.USER_ID, F.HISTORY, F.HISTORY_RATINGS}
    # Metadata: the config's fields, tags as a list (none: empty), a missing price null.
    metadata = [live.metadata.get(row) for row in range(len(live.metadata))]
    assert metadata[0] == {"name": "red item 0", "tags": ["gift", "kitchen"], "price": 0}
    assert metadata[6] == {"name": "red item 6", "tags": [], "price": 15}
    assert metadata[7] == {"name": "blue item 7", "tags": ["sale", "gift"], "price": None}
    profiles = [UserProfile("c1", {}, ["sku-03", "sku-01"]), UserProfile("stranger")]
    assert set(profile_columns(live, profiles)) == set(live.inputs)
    ranked = recommend_batch(live, [RecommendRequest(p, 4, p.history) for p in profiles])
    assert [len(r.rows) for r in ranked] == [4, 4]
    assert not {"sku-03", "sku-01"} & set(ranked[0].item_ids(live))
    assert folder.name == live.version


def test_a_field_without_any_value_still_builds_its_encoder() -> None:
    """A declared field the data never fills (every value missing) gets a one-row table
    and a placeholder corpus instead of failing to build the towers."""
    items = {f"p{i}": {"category": None, "name": None} for i in range(3)}
    catalog = Catalog.from_records(shop_config(), {"u": {}}, items, {})
    features = {f.name: f for f in build_contract(catalog, history_length=2).item_features}
    for name in ("category", "name"):
        out = FeatureEncoder(features[name])(tf.constant(["", "anything"]))
        assert out.shape == (2, features[name].dim)
