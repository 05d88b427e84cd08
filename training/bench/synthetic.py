"""A synthetic item catalog structured like a trained tower's output, for `recsys bench
index`: isotropic noise has nothing for partitioning or quantization to use, so it would
misjudge an index either way.

A few hundred cluster centres (popularity-skewed sizes) lie in a low-rank subspace with a
decaying spectrum; each item is its centre plus variation along a few directions of its
own cluster, plus small isotropic noise, scaled to a log-normal norm (popular items score
higher with every query). Queries mix a few centres, like a user's tastes.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 65_536  # generation batch: bounds temporaries whatever the catalog size


@dataclass(frozen=True)
class Shape:
    """How the synthetic catalog is structured."""

    rank: int = 20  # dimension of the subspace every centre and variation lies in
    clusters: int = 400
    local_rank: int = 4  # directions an item varies along within its cluster
    spread: float = 0.35  # within-cluster variation, relative to the centres' spread
    noise: float = 0.05  # isotropic noise per dimension
    norm_sigma: float = 0.1  # log-normal item norms


@dataclass(frozen=True)
class Structure:
    basis: np.ndarray  # [dim, rank], orthonormal columns
    scales: np.ndarray  # [rank], decaying spectrum of the subspace
    centres: np.ndarray  # [clusters, rank]
    local: np.ndarray  # [clusters, local_rank, rank]: each cluster's own directions
    weights: np.ndarray  # [clusters], cluster popularity (sums to 1)
    shape: Shape


def structure(dim: int, seed: int, shape: Shape = Shape()) -> Structure:
    rng = np.random.default_rng(seed)
    rank = min(shape.rank, dim)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    scales = np.geomspace(1.0, 0.2, rank)
    centres = rng.standard_normal((shape.clusters, rank)) * scales
    local = rng.standard_normal((shape.clusters, shape.local_rank, rank)) * scales
    local *= shape.spread / np.sqrt(shape.local_rank)
    weights = rng.dirichlet(np.full(shape.clusters, 0.5))
    return Structure(basis, scales, centres, local, weights, shape)


def synthetic_items(
    st: Structure, n: int, seed: int, on_chunk: Callable[[int], object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """[n, dim] float32 item embeddings and each item's cluster, generated in chunks."""
    rng = np.random.default_rng(seed)
    items, labels = np.empty((n, len(st.basis)), np.float32), np.empty(n, np.int32)
    for start in range(0, n, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, n - start)
        ids = rng.choice(len(st.weights), size=rows, p=st.weights)
        coefficients = rng.standard_normal((rows, st.shape.local_rank))
        latent = st.centres[ids] + np.einsum("nl,nlr->nr", coefficients, st.local[ids])
        norms = np.exp(st.shape.norm_sigma * rng.standard_normal(rows))
        items[start : start + rows] = _embed(st, latent, rng) * norms[:, None]
        labels[start : start + rows] = ids
        if on_chunk:
            on_chunk(rows)
    return items, labels


def synthetic_queries(st: Structure, n: int, seed: int, tastes: int = 3) -> np.ndarray:
    """[n, dim] float32 unit queries, each a weighted mix of `tastes` centres drawn by
    cluster popularity, varied within the subspace."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(st.weights), size=(n, tastes), p=st.weights)
    latent = np.einsum("nt,ntr->nr", rng.dirichlet(np.ones(tastes), n), st.centres[picks])
    latent += 0.5 * st.shape.spread * st.scales * rng.standard_normal(latent.shape)
    return _embed(st, latent, rng).astype(np.float32)


def _embed(st: Structure, latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Latent rows into the embedding space, plus isotropic noise, scaled to unit norm."""
    x = latent @ st.basis.T + st.shape.noise * rng.standard_normal((len(latent), len(st.basis)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)
