"""ScaNN against a numpy oracle, save -> load round trips, and a published version served.

The exact index must equal brute force; the approximate configs (hashing, tree + hashing)
are only measured (recall@10), since approximate search is allowed to miss.
"""

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from scann import scann_ops_pybind

from app import exact as exact_search
from app.artifacts import ArtifactError, load_live
from app.candidates import reorder_depth, retrieve
from app.db.queries import UserProfile
from app.inputs import call_model, profile_columns
from app.manifest import ITEM_TOWER, QUERY_TOWER
from app.serving import RecommendRequest, recommend_batch
from app.settings import ArtifactSettings, Settings
from app.signatures import load_signatures
from app.version import ItemMetadata, ModelVersion
from models import features as F
from tests.model.test_towers import CONFIG as TOWER_CONFIG
from tests.model.test_towers import item, tiny_catalog
from tests.versions import bare_version
from training import export, pipeline
from training.config import IndexConfig
from training.contract import build_contract
from training.dataset import Catalog, item_columns, leave_last_out
from training.evaluate import popular_items
from training.metrics import recall_at_k
from training.train import build_model, embed

pytestmark = pytest.mark.model

K = 10
NAN = float("nan")


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n_items: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Items and queries in 16 dims: unit rows around 12 centres, like a trained
    normalized tower (isotropic noise has no structure for partitioning to use)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16))
    items = centres[rng.integers(12, size=n_items)] + 0.5 * rng.normal(size=(n_items, 16))
    queries = centres[rng.integers(12, size=n_queries)] + 0.5 * rng.normal(size=(n_queries, 16))
    return unit_rows(items), unit_rows(queries)


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    """300 items and 100 queries."""
    return clustered(300, 100)


def test_brute_force_index_equals_the_numpy_oracle(vectors) -> None:
    items, queries = vectors
    searcher, info = export.build_index(items, IndexConfig(mode="brute_force"))
    neighbours, scores = searcher.search_batched(queries, final_num_neighbors=K)
    expected = export.exact_top_k(queries, items, K)
    assert info["mode"] == "brute_force"
    np.testing.assert_array_equal(neighbours, expected)
    oracle_scores = np.take_along_axis(queries @ items.T, expected, axis=1)
    np.testing.assert_allclose(scores, oracle_scores, rtol=1e-5, atol=1e-6)


def test_exact_top_k_is_best_first() -> None:
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    # [1, 0] scores 1, 0, 0.6 -> rows 0, 2, 1; [0, 1] scores 0, 1, 0.6 -> rows 1, 2, 0.
    assert export.exact_top_k(np.eye(2), items, 3).tolist() == [[0, 2, 1], [1, 2, 0]]


TREE = IndexConfig(mode="tree_ah", leaves_to_search_fraction=0.25)  # a small forced tree


@pytest.fixture(scope="module")
def tree_vectors() -> tuple[np.ndarray, np.ndarray]:
    """3,000 items and 200 queries: enough rows per leaf that one k-means build varies
    little (300 items gave recall 0.74-1.00 across builds, 3,000 gave 0.94-0.98)."""
    return clustered(3000, 200)


APPROXIMATE = [TREE, IndexConfig(mode="ah")]


def test_tree_ah_config_keeps_recall_at_10(tree_vectors) -> None:
    items, queries = tree_vectors
    tree = IndexConfig(mode="tree_ah", leaves_to_search_fraction=0.1)
    searcher, info = export.build_index(items, tree)
    approximate, _ = searcher.search_batched(queries, final_num_neighbors=K)
    assert info == {
        "mode": "tree_ah",
        "num_leaves": 54,
        "leaves_to_search": 5,
        "reorder_num_neighbors": 200,
        "reorder_multiplier": 4.0,
    }
    # k-means is not bit-reproducible across runs: 40 builds with the other core busy
    # gave mean 0.963, std 0.010, min 0.941.
    assert recall_at_k(approximate, export.exact_top_k(queries, items, K)) >= 0.85


def tree_recall(searcher, queries: np.ndarray, items: np.ndarray, leaves: int) -> float:
    """recall@K of `searcher` opening `leaves` leaves, re-ranking as the export tunes."""
    found, _ = searcher.search_batched(
        queries, final_num_neighbors=K, pre_reorder_num_neighbors=200, leaves_to_search=leaves
    )
    return recall_at_k(np.asarray(found), export.exact_top_k(queries, items, K))


def test_tuning_opens_the_fewest_leaves_that_keep_the_target_recall(tree_vectors) -> None:
    """Given held-out queries, the export picks the fewest leaves (of its candidate
    shares, up to the configured share) whose recall@k reaches the target: every fewer
    count tried misses it."""
    items, queries = tree_vectors
    tuning, held_out = queries[:100], queries[100:]
    config = IndexConfig(mode="tree_ah", leaves_to_search_fraction=0.25, target_recall=0.8)
    searcher, info = export.build_index(items, config, queries=tuning)
    count, ceiling = info["leaves_to_search"], round(54 * 0.25)
    tried = sorted({round(54 * share) for share in export.TUNING_SHARES} - {0})
    assert 1 <= count < ceiling and count in tried
    assert info["tuning"] == {
        "queries": 100,
        "k": K,
        "recall": tree_recall(searcher, tuning, items, count),
        "target": 0.8,
    }
    assert info["tuning"]["recall"] >= 0.8
    assert all(tree_recall(searcher, tuning, items, n) < 0.8 for n in tried if n < count)
    assert tree_recall(searcher, held_out, items, count) >= 0.7  # not fitted to its queries


def test_tuning_never_opens_more_than_the_configured_share(tree_vectors) -> None:
    """An unreachable target: the share's own recall less the slack becomes the target,
    so tuning never slows a search and takes the fewest leaves within the slack of it."""
    items, queries = tree_vectors
    tuning = queries[:100]
    config = IndexConfig(
        mode="tree_ah", leaves_to_search_fraction=0.1, target_recall=1.0, recall_slack=0.05
    )
    searcher, info = export.build_index(items, config, queries=tuning)
    share = tree_recall(searcher, tuning, items, 5)  # 5 of 54 leaves: the configured share
    assert share < 1.0
    count, tuned = info["leaves_to_search"], info["tuning"]
    assert tuned["target"] == pytest.approx(share - 0.05)
    assert 1 <= count <= 5 and tuned["recall"] == tree_recall(searcher, tuning, items, count)
    assert tuned["recall"] >= tuned["target"]
    fewer = {round(54 * s) for s in export.TUNING_SHARES} - {0} - set(range(count, 55))
    assert all(tree_recall(searcher, tuning, items, n) < tuned["target"] for n in fewer)
    _, untuned = export.build_index(items, config)  # no queries: the share, no tuning
    assert untuned["leaves_to_search"] == 5 and "tuning" not in untuned


def test_tuning_without_slack_keeps_the_shares_recall(tree_vectors) -> None:
    """No slack: an unreachable target keeps the share's recall exactly (fewer leaves
    only where they lose nothing)."""
    items, queries = tree_vectors
    config = IndexConfig(
        mode="tree_ah", leaves_to_search_fraction=0.1, target_recall=1.0, recall_slack=0.0
    )
    searcher, info = export.build_index(items, config, queries=queries[:100])
    share = tree_recall(searcher, queries[:100], items, 5)
    assert info["tuning"]["recall"] == share == info["tuning"]["target"]


def test_serving_opens_as_many_leaves_as_the_manifest_names(tree_vectors) -> None:
    items, queries = tree_vectors
    version = dataclasses.replace(index_version(items, TREE), leaves_to_search=13)
    exact = export.exact_top_k(queries, items, K)
    wide = recall_at_k(served_rows(version, queries, K), exact)
    narrow = dataclasses.replace(version, leaves_to_search=1)
    assert recall_at_k(served_rows(narrow, queries, K), exact) < wide - 0.1


@pytest.mark.parametrize(
    ("rows", "mode"),
    [(63, "brute_force"), (19_999, "brute_force"), (20_000, "ah"), (100_000, "tree_ah")],
)
def test_auto_mode_follows_scanns_guide_by_catalog_size(rows: int, mode: str) -> None:
    assert export.index_mode(rows, IndexConfig()) == mode


def test_auto_mode_gives_a_small_catalog_exact_search(vectors) -> None:
    items, queries = vectors
    searcher, info = export.build_index(items, IndexConfig())
    neighbours, _ = searcher.search_batched(queries, final_num_neighbors=K)
    assert info == {"mode": "brute_force", "num_leaves": 1, "reorder_num_neighbors": 0}
    np.testing.assert_array_equal(neighbours, export.exact_top_k(queries, items, K))


def test_hashing_without_partitions_keeps_recall_at_10(vectors) -> None:
    items, queries = vectors
    config = IndexConfig(brute_force_below=100, partition_above=1000)
    searcher, info = export.build_index(items, config)
    approximate, _ = searcher.search_batched(queries, final_num_neighbors=K)
    assert info == {
        "mode": "ah",
        "num_leaves": 1,
        "reorder_num_neighbors": 200,
        "reorder_multiplier": 4.0,
    }
    assert recall_at_k(approximate, export.exact_top_k(queries, items, K)) >= 0.95


def test_small_catalog_always_gets_brute_force(vectors) -> None:
    items, queries = vectors
    searcher, info = export.build_index(items[:63], TREE)
    neighbours, _ = searcher.search_batched(queries, final_num_neighbors=K)
    assert info["mode"] == "brute_force"
    np.testing.assert_array_equal(neighbours, export.exact_top_k(queries, items[:63], K))


def test_serialized_index_loads_from_a_moved_folder(vectors, tmp_path: Path) -> None:
    items, queries = vectors
    searcher, _ = export.build_index(items, TREE)
    (tmp_path / "built").mkdir()
    searcher.serialize(str(tmp_path / "built"), relative_path=True)
    (tmp_path / "built").rename(tmp_path / "moved")
    loaded = scann_ops_pybind.load_searcher(str(tmp_path / "moved"))
    before = searcher.search_batched(queries, final_num_neighbors=K)
    after = loaded.search_batched(queries, final_num_neighbors=K)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])


# --- A tiny catalog, model and published version -------------------------------------

HISTORY_LENGTH = TOWER_CONFIG.history_length
# Retrieval only: these tests compare served lists with the exact two-tower top-k.
CONFIG = TOWER_CONFIG.model_copy(update={"popular_items": 5}, deep=True)
CONFIG.ranker.enabled = False
NONE = np.empty(0, dtype=np.int64)  # no excluded rows


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return tiny_catalog()


@pytest.fixture(scope="module")
def model(catalog: Catalog):
    tf.keras.utils.set_random_seed(CONFIG.seed)
    return build_model(build_contract(catalog, HISTORY_LENGTH), CONFIG)


def every_item(catalog: Catalog, model) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """The candidate tower's inputs for every catalog row, in index order."""
    return item_columns(catalog, np.arange(len(catalog.item_ids)), model.contract)


@pytest.fixture(scope="module")
def item_vectors(model, catalog: Catalog) -> tuple[list[str], np.ndarray]:
    item_ids = sorted(str(i) for i in range(1, 9))  # the tiny catalog's ids, sorted
    return item_ids, embed(model.candidate_tower, every_item(catalog, model), 64)


def raw_queries() -> dict[str, tf.Tensor]:
    """Known and unknown users, a short, a full and an empty history."""
    return {
        F.USER_ID: tf.constant(["1", "3", "stranger"]),
        "age": tf.constant([24, NAN, 61], dtype=tf.float32),
        "gender": tf.constant(["M", "", "F"]),
        "occupation": tf.constant(["student", "writer", "astronaut"]),
        "zip_code": tf.constant(["10001", "", "00000"]),
        F.HISTORY: tf.constant([["2", "", ""], ["4", "7", "1"], ["", "", ""]]),
        F.HISTORY_RATINGS: tf.constant(
            [[4.0, NAN, NAN], [NAN, 2.0, 5.0], [NAN] * 3], dtype=tf.float32
        ),
    }


def profiles() -> list[UserProfile]:
    """The users of raw_queries() as the app reads them: None for missing attributes,
    histories of any length."""
    return [
        UserProfile("1", attributes(24, "M", "student", "10001"), ["2"], [4.0]),
        UserProfile(
            "3", attributes(None, None, "writer", None), ["4", "7", "1", "5"], [None, 2.0, 5.0, 1.0]
        ),
        UserProfile("stranger", attributes(61, "F", "astronaut", "00000"), []),
    ]


def attributes(age, gender, occupation, zip_code) -> dict:  # type: ignore[no-untyped-def]
    return {"age": age, "gender": gender, "occupation": occupation, "zip_code": zip_code}


def publish(artifacts_dir: Path, trained: pipeline.Trained) -> Path:
    """Stage, finish and publish a live version with the pipeline's own steps."""
    settings = Settings(artifacts=ArtifactSettings(dir=artifacts_dir))
    staged = pipeline.stage(settings, trained)
    pipeline.finish_manifest(staged, trained, {"metrics": {}, "index_recall@10": 1.0})
    return pipeline.publish_staged(settings, staged.folder, make_live=True)


@pytest.fixture(scope="module")
def retrieval_dir(tmp_path_factory, catalog: Catalog, model) -> Path:
    """A retrieval-only version exported by the pipeline's own export step and made live."""
    split = leave_last_out(catalog, model.contract)
    trained = pipeline.Trained(CONFIG, catalog, split, model, None, {})
    return publish(tmp_path_factory.mktemp("artifacts"), trained).parent


@pytest.fixture(scope="module")
def live(retrieval_dir: Path) -> ModelVersion:
    return load_live(retrieval_dir)


def test_live_version_is_the_published_one(live: ModelVersion, retrieval_dir: Path) -> None:
    assert live.version == (retrieval_dir / "LIVE").read_text().strip()
    assert live.version.endswith("-tiny") and live.ranking is None
    assert live.manifest.index.model_dump(exclude_none=True) == {
        "items": 8,
        "mode": "brute_force",
        "num_leaves": 1,
        "reorder_num_neighbors": 0,
    }
    assert live.history_length == HISTORY_LENGTH and live.history_feature == F.HISTORY
    # A brute-force index is served exactly, with numpy over the vectors it holds.
    assert live.exact and live.item_embeddings is not None
    catalog = tiny_catalog()
    split = leave_last_out(catalog, build_contract(catalog, HISTORY_LENGTH))
    assert live.popular == popular_items(split, CONFIG.popular_items)


def test_catalog_files_are_in_index_row_order(live: ModelVersion, catalog, item_vectors) -> None:
    item_ids, vectors = item_vectors
    assert live.item_ids.tolist() == item_ids and live.row_of["8"] == 7
    assert live.manifest.serving.model_dump() == {
        "signatures": ["serving_default"],
        "item_vectors": {"embedding": {"file": "item_vectors/embedding.npy", "dim": 8}},
        "metadata": "metadata.jsonl",
        "filters": "filters.json",
    }
    # Each categorical item field's values and the rows holding them (business filters).
    genres = live.filters.values()["genres"] if live.filters else []
    assert genres and live.filters.allowed({"genres": [genres[0]]}).tolist() == [
        row for row, i in enumerate(item_ids) if genres[0] in item(int(i))["genres"].split("|")
    ]
    # The catalog's metadata fields of each item's record (genres as a list, no url).
    assert [live.metadata.get(row) for row in range(len(live.metadata))] == [
        {**item(int(i)), "genres": item(int(i))["genres"].split("|"), "url": None} for i in item_ids
    ]


def test_query_tower_holds_only_what_serving_loads(retrieval_dir: Path, live: ModelVersion) -> None:
    """Loading is what slows requests during a swap: the SavedModel the app loads holds
    its signatures and their state, not the Keras layers' traced calls, the item side or
    checkpoint ops."""
    from tensorflow.core.protobuf import saved_model_pb2

    folder = retrieval_dir / live.version
    saved = saved_model_pb2.SavedModel.FromString(
        (folder / QUERY_TOWER / "saved_model.pb").read_bytes()
    )
    graph = saved.meta_graphs[0]
    assert set(graph.signature_def) - {"__saved_model_init_op"} == {"serving_default"}
    assert not graph.HasField("saver_def")
    root = graph.object_graph_def.nodes[0]
    assert {child.local_name for child in root.children} == {"state", "signatures"}
    called = [f for f in graph.graph_def.library.function if "inference_" in f.signature.name]
    layer_calls = [f.signature.name for f in called if "call_and_return" in f.signature.name]
    assert layer_calls == []
    items = tf.saved_model.load(str(folder / ITEM_TOWER)).signatures
    assert set(items) == {"items"}


def test_exported_item_signature_matches_the_tower_in_batches(
    retrieval_dir: Path, live: ModelVersion, catalog, model, item_vectors
) -> None:
    item_ids, vectors = item_vectors
    path = retrieval_dir / live.version / ITEM_TOWER
    exported = export.item_vectors(path, every_item(catalog, model), batch_size=3)
    assert list(exported) == ["embedding"]
    np.testing.assert_allclose(exported["embedding"], vectors, rtol=1e-6, atol=1e-6)
    written = np.load(retrieval_dir / live.version / "item_vectors" / "embedding.npy")
    np.testing.assert_allclose(written, vectors, rtol=1e-6, atol=1e-6)


def test_item_vectors_and_metadata_files_round_trip(tmp_path: Path) -> None:
    written = export.write_item_vectors(tmp_path / "item_vectors", {"e": np.eye(3) / 3})
    assert written == {"e": "item_vectors/e.npy"}
    loaded = np.load(tmp_path / written["e"])
    assert loaded.dtype == np.float32 and np.allclose(loaded, np.eye(3) / 3)
    rows = [{"title": "Amélie (2001)", "genres": ["Comedy"]}, {"title": "two\nlines"}, {}]
    export.write_metadata(tmp_path / "metadata.jsonl", rows)
    metadata = ItemMetadata((tmp_path / "metadata.jsonl").read_bytes())
    assert len(metadata) == 3 and [metadata.get(row) for row in range(3)] == rows


def test_app_embeddings_match_the_trained_tower(live: ModelVersion, model) -> None:
    # The app pads, truncates and fills missing values from the manifest alone.
    served = live.query_fn(profile_columns(live, profiles()))
    assert list(served) == ["embedding"]
    np.testing.assert_allclose(
        served["embedding"], model.query_tower(raw_queries()).numpy(), atol=1e-6
    )


def test_the_served_signature_answers_as_the_eager_one_from_many_threads(
    live: ModelVersion, retrieval_dir: Path
) -> None:
    """The app runs the query signature's graph in a session: the same numbers as the
    SavedModel's eager signature, also with several threads calling it at once."""
    folder = retrieval_dir / live.version / QUERY_TOWER
    eager = tf.saved_model.load(str(folder)).signatures["serving_default"]
    columns = profile_columns(live, profiles())
    expected = call_model(eager, columns)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: live.query_fn(columns), range(16)))
    for answer in answers:
        assert answer.keys() == expected.keys()
        for name, values in expected.items():
            assert answer[name].dtype == values.dtype
            np.testing.assert_allclose(answer[name], values, atol=1e-6)


def test_signatures_through_the_public_make_callable_answer_the_same(
    live: ModelVersion, retrieval_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a TensorFlow has no session C++ callable, the public `make_callable` serves
    the same numbers; and inputs of another dtype are cast to the placeholder's."""
    folder = retrieval_dir / live.version / QUERY_TOWER
    columns = profile_columns(live, profiles())
    expected = live.query_fn(columns)
    monkeypatch.delattr(tf.compat.v1.Session.__mro__[1], "_make_callable_from_options")
    public = load_signatures(folder)["serving_default"]
    assert not hasattr(tf.compat.v1.Session(), "_make_callable_from_options")
    loose = {
        name: values.astype(np.float64) if values.dtype == np.float32 else values
        for name, values in columns.items()
    }
    assert any(loose[name].dtype != columns[name].dtype for name in columns)
    for answer in (public(columns), live.query_fn(loose)):
        assert answer.keys() == expected.keys()
        for name, values in expected.items():
            np.testing.assert_allclose(answer[name], values, atol=1e-6)


def test_served_lists_equal_the_exact_top_k_minus_excluded(live, model, item_vectors) -> None:
    item_ids, vectors = item_vectors
    excluded = [("2", "5"), (), ("1", "8", "no-such-item")]
    requests = [RecommendRequest(p, 5, e) for p, e in zip(profiles(), excluded, strict=True)]
    scores = model.query_tower(raw_queries()).numpy() @ vectors.T
    for row, ranked in enumerate(recommend_batch(live, requests)):
        order = [item_ids[c] for c in np.argsort(-scores[row], kind="stable")]
        assert ranked.item_ids(live) == [i for i in order if i not in excluded[row]][:5]
        np.testing.assert_allclose(ranked.scores, scores[row, ranked.rows], atol=1e-5)


def test_k_larger_than_the_catalog_returns_every_unexcluded_item(live: ModelVersion) -> None:
    exclude = {"3", "8", "no-such-item"}
    [ranked] = recommend_batch(live, [RecommendRequest(profiles()[0], 50, tuple(exclude))])
    ids = ranked.item_ids(live)
    assert len(ids) == 6 and set(ids) == set(live.item_ids) - exclude
    assert ranked.scores.tolist() == sorted(ranked.scores, reverse=True)
    assert recommend_batch(live, []) == []


def test_every_listed_file_is_checked(retrieval_dir: Path, live: ModelVersion, tmp_path) -> None:
    listed = live.manifest.files
    assert {
        *("item_ids.json", "popular.json", "metadata.jsonl", "filters.json"),
        *("item_vectors/embedding.npy", "query_tower/saved_model.pb"),
    } <= set(listed)
    assert any(name.startswith("candidate_index/") for name in listed)
    for name in listed:
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(retrieval_dir, copy)
        flip_one_byte(copy / live.version / name)
        with pytest.raises(ArtifactError, match=f"{copy / live.version / name}: checksum"):
            load_live(copy)


def flip_one_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))


def test_missing_live_pointer_says_to_train(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="missing LIVE.*run `recsys train` first"):
        load_live(tmp_path)


# --- Publishing, without a model ------------------------------------------------------


def stage(artifacts_dir: Path, version: str) -> Path:
    staging = export.staging_folder(artifacts_dir, version)
    (staging / "payload.txt").write_text(version)
    return staging


def test_publish_moves_live_and_keeps_older_versions(tmp_path: Path) -> None:
    export.publish(stage(tmp_path, "v1"), tmp_path, "v1", make_live=True)
    export.publish(stage(tmp_path, "v2"), tmp_path, "v2", make_live=True)
    assert (tmp_path / "LIVE").read_text() == "v2\n"
    assert (tmp_path / "v1" / "payload.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LIVE", "v1", "v2"]  # no leftovers


def test_publish_without_make_live_leaves_the_pointer(tmp_path: Path) -> None:
    export.publish(stage(tmp_path, "v1"), tmp_path, "v1", make_live=True)
    export.publish(stage(tmp_path, "v2"), tmp_path, "v2", make_live=False)
    assert (tmp_path / "LIVE").read_text() == "v1\n"
    assert (tmp_path / "v2" / "payload.txt").is_file()


def test_publish_never_overwrites_a_version(tmp_path: Path) -> None:
    export.publish(stage(tmp_path, "v1"), tmp_path, "v1", make_live=True)
    with pytest.raises(OSError):
        export.publish(stage(tmp_path, "v1"), tmp_path, "v1", make_live=True)
    assert (tmp_path / "v1" / "payload.txt").read_text() == "v1"


def test_checksums_cover_nested_files_but_not_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"abc")
    (tmp_path / export.MANIFEST).write_text("{}")
    sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert export.checksums(tmp_path) == {"sub/a.bin": sha_abc}


def test_new_versions_sort_by_creation_and_carry_the_data_fingerprint() -> None:
    first, second = export.new_version("feedbeef00"), export.new_version("0badf00d11")
    assert first.endswith("-feedbeef") and second.endswith("-0badf00d")
    created = [datetime.strptime(v.split("-")[0], "%Y%m%dT%H%M%S%fZ") for v in (first, second)]
    assert created[0] <= created[1]


# --- The first stage over an index alone ----------------------------------------------


def index_version(items: np.ndarray, config: IndexConfig) -> ModelVersion:
    """A version holding only a ScaNN index over `items` (ids "0".."n-1")."""
    searcher, info = export.build_index(items, config)
    assert info["mode"] == config.mode
    return bare_version(
        searcher=searcher,
        item_ids=np.array([str(i) for i in range(len(items))], dtype=object),
        leaves=info["num_leaves"],
        reorder=info["reorder_num_neighbors"],
        reorder_multiplier=info.get("reorder_multiplier", 1.0),
    )


def served_rows(version: ModelVersion, queries, wanted: int, excluded=NONE) -> np.ndarray:
    """The first stage's rows for each query (the same `wanted` and `excluded` for all)."""
    found = retrieve(version, queries, [wanted] * len(queries), [excluded] * len(queries))
    return np.stack([rows for rows, _ in found])


def test_rows_of_ids_are_sorted_unique_and_skip_unknown_ids() -> None:
    version = bare_version(item_ids=np.array(["b", "a", "c"], dtype=object))
    assert version.rows(["c", "b", "no-such-item", "c"]).tolist() == [0, 2]
    assert version.rows([]).tolist() == []


def test_exclusions_apply_to_their_own_request_only(vectors) -> None:
    items, queries = vectors
    version = index_version(items, IndexConfig(mode="brute_force"))
    exact = export.exact_top_k(queries[:1], items, K + 3)[0]
    excluded = [np.sort(exact[:3]), NONE]  # the same query twice, only the first excludes
    first, second = retrieve(version, queries[[0, 0]], [K, K], excluded)
    assert first[0].tolist() == exact[3:].tolist()
    assert second[0].tolist() == exact[:K].tolist()
    np.testing.assert_allclose(first[1], queries[0] @ items[exact[3:]].T, atol=1e-5)


@pytest.mark.parametrize("step", [None, 1, 7], ids=["one-product", "slices-of-1", "slices-of-7"])
def test_an_exact_index_is_scored_with_a_mask_and_answers_as_scann_does(
    vectors, monkeypatch, step
) -> None:
    """A brute-force version scores the catalog with numpy, seen rows masked, without
    calling ScaNN; the answers are the ScaNN brute-force path's (rows equal, scores within
    1e-5) for light, heavy and all-but-everything exclusions, in any slicing of queries."""
    items, queries = vectors
    scann_path = index_version(items, IndexConfig(mode="brute_force"))
    recording = RecordingSearcher(scann_path.searcher)
    exact = dataclasses.replace(scann_path, searcher=recording, item_embeddings=items, exact=True)
    if step is not None:
        monkeypatch.setattr(exact_search, "MASKED_SCORES", step * len(items))
    seen = [NONE, np.arange(0, 300, 3), np.arange(295), np.arange(300), np.array([5, 5, 9])]
    wanted = [K, 100, 20, K, 1]
    expected = retrieve(scann_path, queries[:5], wanted, seen)
    found = retrieve(exact, queries[:5], wanted, seen)
    assert recording.calls == []
    assert [len(rows) for rows, _ in found] == [K, 100, 5, 0, 1]
    for (rows, scores), (want_rows, want_scores), skip in zip(found, expected, seen, strict=True):
        assert rows.tolist() == want_rows.tolist()
        assert not set(rows.tolist()) & set(skip.tolist())
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)


class RecordingSearcher:
    """A real ScaNN searcher that notes the size and depth of each batched search."""

    def __init__(self, searcher):  # type: ignore[no-untyped-def]
        self.searcher, self.calls = searcher, []

    def search_batched(self, queries, **options):  # type: ignore[no-untyped-def]
        self.calls.append((len(queries), options["final_num_neighbors"]))
        return self.searcher.search_batched(queries, **options)


def test_each_request_is_searched_only_as_deep_as_it_needs(vectors) -> None:
    """Depth = wanted + excluded, rounded up to a power of two: the two light requests
    share a search at 16, the heavy one alone goes to 128."""
    items, queries = vectors
    version = index_version(items, IndexConfig(mode="brute_force"))
    recording = RecordingSearcher(version.searcher)
    excluded = [NONE, np.arange(6), np.arange(20)]
    searched = dataclasses.replace(version, searcher=recording)
    found = retrieve(searched, queries[:3], [K, K, 100], excluded)
    assert recording.calls == [(2, 16), (1, 128)]
    exact = export.exact_top_k(queries[:3], items, 120)
    for (rows, _), skip, best, k in zip(found, excluded, exact, [K, K, 100], strict=True):
        assert rows.tolist() == [r for r in best if r not in skip][:k]


def test_reorder_depth_grows_with_the_request_but_not_past_the_catalog() -> None:
    version = bare_version(item_ids=np.arange(1000).astype(object), reorder=200)
    deep = dataclasses.replace(version, reorder_multiplier=4.0)
    assert [reorder_depth(version, n) for n in (10, 100, 1000)] == [200, 200, 1000]
    assert [reorder_depth(deep, n) for n in (10, 100, 1000)] == [200, 400, 1000]


@pytest.mark.parametrize("config", APPROXIMATE, ids=lambda c: c.mode)
def test_served_search_keeps_the_index_recall(vectors, config: IndexConfig) -> None:
    """Regression: serving once overrode the index's re-rank depth with k + |seen|, which
    re-scored too few candidates and lost recall the manifest claimed."""
    items, queries = vectors
    version = index_version(items, config)
    default, _ = version.searcher.search_batched(queries, final_num_neighbors=K)
    exact = export.exact_top_k(queries, items, K)
    served = served_rows(version, queries, K)
    assert recall_at_k(served, exact) >= recall_at_k(np.asarray(default), exact)


@pytest.mark.parametrize("config", APPROXIMATE, ids=lambda c: c.mode)
def test_deep_requests_keep_recall_at_serving_depth(config: IndexConfig) -> None:
    """The ranker asks for 100 unseen items, not 10: the exact re-rank must grow with the
    request, or hashing's rough scores drop true neighbours (recall@100 was 0.83-0.96)."""
    items, queries = clustered(5000, 50)
    excluded = np.arange(1, 40, 2)
    scores = queries @ items.T
    scores[:, excluded] = -np.inf
    exact = np.argsort(-scores, axis=1)[:, :100]
    version = index_version(items, config)
    assert recall_at_k(served_rows(version, queries, 100, excluded), exact) >= 0.99
    shallow = dataclasses.replace(version, reorder_multiplier=1.0)
    assert recall_at_k(served_rows(shallow, queries, 100, excluded), exact) < 0.99


@pytest.mark.parametrize("config", APPROXIMATE, ids=lambda c: c.mode)
def test_partial_search_padding_never_reaches_the_list(vectors, config: IndexConfig) -> None:
    """Regression: asking ScaNN for more neighbours than the searched partitions hold
    returns (row 0, NaN) padding, which once surfaced as repeated items."""
    items, queries = vectors
    version = index_version(items, config)
    excluded = np.arange(1, 300, 2)  # half seen; row 0 (the padding's row) is not
    for rows, scores in retrieve(version, queries[:5], [120] * 5, [excluded] * 5):
        assert len(rows) == 120 and len(set(rows.tolist())) == 120
        assert not set(rows.tolist()) & set(excluded.tolist())
        assert np.isfinite(scores).all()
