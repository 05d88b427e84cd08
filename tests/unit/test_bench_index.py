"""`recsys bench index` without ScaNN: the synthetic catalog is structured (clustered,
low-rank, skewed norms), generated in bounded chunks, and the numpy brute force that
every recall figure is measured against is exact."""

import numpy as np
import pytest

from training.bench import synthetic
from training.bench.index import brute_force
from training.bench.synthetic import Shape, structure, synthetic_items, synthetic_queries

DIM = 64


@pytest.fixture(scope="module")
def catalog() -> tuple[synthetic.Structure, np.ndarray, np.ndarray]:
    st = structure(DIM, seed=0)
    items, labels = synthetic_items(st, 20_000, seed=1)
    return st, items, labels


def test_items_are_float32_rows_of_the_asked_shape(catalog) -> None:
    _, items, labels = catalog
    assert items.shape == (20_000, DIM) and items.dtype == np.float32
    assert labels.shape == (20_000,) and np.isfinite(items).all()


def test_variance_lies_in_a_low_rank_subspace(catalog) -> None:
    """Nearly all variance in the `rank` (20) leading directions of 64, yet spread over
    them (no single direction dominates), unlike isotropic noise (20/64 = 0.31)."""
    _, items, _ = catalog
    power = np.linalg.svd(items - items.mean(0), compute_uv=False) ** 2
    share = np.cumsum(power) / power.sum()
    assert share[Shape().rank - 1] > 0.95
    assert share[0] < 0.5


def test_items_cluster_around_their_centres(catalog) -> None:
    """Most items are nearest (by cosine, in the subspace) to their own centre, and
    items of one cluster are far more alike than items of two."""
    st, items, labels = catalog
    latent = items @ st.basis
    latent /= np.linalg.norm(latent, axis=1, keepdims=True)
    centres = st.centres / np.linalg.norm(st.centres, axis=1, keepdims=True)
    assert np.mean(np.argmax(latent @ centres.T, axis=1) == labels) > 0.8
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    left, right = unit[:5000], unit[5000:10000]
    cosines = np.sum(left * right, axis=1)
    same = labels[:5000] == labels[5000:10000]
    assert same.sum() > 20
    assert cosines[same].mean() > 0.7 and cosines[~same].mean() < 0.2


def test_cluster_sizes_and_norms_are_skewed(catalog) -> None:
    st, items, labels = catalog
    sizes = np.sort(np.bincount(labels, minlength=len(st.weights)))[::-1]
    assert sizes[:40].sum() > 0.3 * len(labels)  # the top 10% of clusters
    norms = np.linalg.norm(items, axis=1)
    assert 0.95 < np.median(norms) < 1.05 and norms.max() > 1.3 * np.median(norms)


def test_queries_are_unit_rows_mixing_clusters(catalog) -> None:
    st, items, labels = catalog
    queries = synthetic_queries(st, 200, seed=2)
    assert queries.shape == (200, DIM) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    top = brute_force(items, queries, 10)[0]
    clusters_per_query = [len(set(labels[row])) for row in top]
    assert 1.0 < np.mean(clusters_per_query) < 5.0


def test_generation_is_chunked_and_seeded(monkeypatch) -> None:
    """Chunks of CHUNK_ROWS (the last one short) fill the catalog; a seed fixes it."""
    st = structure(16, seed=3)
    monkeypatch.setattr(synthetic, "CHUNK_ROWS", 300)
    seen: list[int] = []
    items, labels = synthetic_items(st, 1000, seed=4, on_chunk=seen.append)
    assert seen == [300, 300, 300, 100]
    assert items.shape == (1000, 16) and np.isfinite(items).all() and (labels >= 0).all()
    again, _ = synthetic_items(st, 1000, seed=4)
    np.testing.assert_array_equal(again, items)
    assert not np.array_equal(synthetic_items(st, 1000, seed=5)[0], items)


def test_brute_force_is_the_exact_top_k_best_first(catalog) -> None:
    st, items, _ = catalog
    queries = synthetic_queries(st, 5, seed=6)
    found, seconds = brute_force(items, queries, 10)
    expected = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(found, expected)
    assert seconds.shape == (5,) and (seconds > 0).all()
