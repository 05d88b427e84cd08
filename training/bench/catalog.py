"""A synthetic catalog in MovieLens' shape, at any size, for scale benchmarks.

Structure a model can learn, not noise: every user and item belongs to one of a few
dozen taste clusters; an item's genres come from its cluster; item popularity follows a
Zipf law; most of a user's interactions are items of their own cluster (popular ones more
often), the rest are popular items of any cluster; ratings are higher inside the cluster.
Interactions are in time order, as the loader expects.
"""

from datetime import UTC, datetime, timedelta

import numpy as np

from training.movielens import GENRES, MovieLens

CLUSTERS = 40
IN_CLUSTER = 0.8  # share of a user's interactions drawn from their own cluster
OCCUPATIONS = ("engineer", "student", "artist", "doctor", "writer", "other")
START = datetime(2020, 1, 1, tzinfo=UTC)


def synthetic_catalog(users: int, items: int, interactions: int, seed: int = 0) -> MovieLens:
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(CLUSTERS, size=items)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    popularity = popularity[rng.permutation(items)]
    user_cluster = rng.integers(CLUSTERS, size=users)
    return MovieLens(
        users=[_user(u, rng) for u in range(users)],
        items=_items(item_cluster, rng),
        interactions=_interactions(user_cluster, item_cluster, popularity, interactions, rng),
    )


def _user(u: int, rng: np.random.Generator) -> dict:
    return {
        "id": str(u + 1),
        "age": int(rng.integers(18, 70)),
        "gender": "MF"[int(rng.integers(2))],
        "occupation": OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))],
        "zip_code": f"{int(rng.integers(10000, 99999))}",
    }


def _items(item_cluster: np.ndarray, rng: np.random.Generator) -> list[dict]:
    names = list(GENRES[1:])  # GENRES[0] is "unknown"
    cluster_genres = [
        "|".join(sorted(rng.choice(names, size=int(rng.integers(1, 4)), replace=False)))
        for _ in range(CLUSTERS)
    ]
    years = rng.integers(1930, 2020, size=len(item_cluster))
    words = rng.integers(2000, size=len(item_cluster))  # a word of a shared lexicon
    return [
        {
            "id": str(i + 1),
            "title": f"Cluster{c} Word{w} ({year})",
            "genres": cluster_genres[c],
            "release_date": f"01-Jan-{year}",
            "url": None,
        }
        for i, (c, w, year) in enumerate(
            zip(item_cluster.tolist(), words.tolist(), years.tolist(), strict=True)
        )
    ]


def _interactions(
    user_cluster: np.ndarray,
    item_cluster: np.ndarray,
    popularity: np.ndarray,
    total: int,
    rng: np.random.Generator,
) -> list[dict]:
    users = len(user_cluster)
    # Skewed activity: a few heavy users, many light ones; everyone has at least 5.
    counts = np.maximum(5, rng.lognormal(0, 1.0, size=users) * total / users / 1.65).astype(int)
    owner = np.repeat(np.arange(users), counts)
    own = rng.random(len(owner)) < IN_CLUSTER
    chosen = _sample_global(popularity, len(owner), rng)
    for cluster in range(CLUSTERS):
        members = np.flatnonzero(item_cluster == cluster)
        if not len(members):
            continue  # a tiny catalog may leave a cluster empty: global picks stand
        wanted = np.flatnonzero(own & (user_cluster[owner] == cluster))
        chosen[wanted] = members[_sample_global(popularity[members], len(wanted), rng)]
    stars = np.where(own, rng.integers(3, 6, len(owner)), rng.integers(1, 4, len(owner)))
    seconds = np.sort(rng.integers(0, 365 * 86400, size=len(owner)))
    order = rng.permutation(len(owner))  # times in order, owners interleaved
    rows = []
    seen: set[tuple[int, int]] = set()
    for t, i in zip(seconds.tolist(), order.tolist(), strict=True):
        key = (int(owner[i]), int(chosen[i]))
        if key in seen:  # one rating per (user, item), as in MovieLens
            continue
        seen.add(key)
        rows.append(_event(key, float(stars[i]), t))
    return rows


def _sample_global(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(weights)
    return np.searchsorted(cumulative, rng.random(n) * cumulative[-1]).clip(0, len(weights) - 1)


def _event(key: tuple[int, int], rating: float, second: int) -> dict:
    return {
        "user_id": str(key[0] + 1),
        "item_id": str(key[1] + 1),
        "rating": rating,
        "event_type": "rating",
        "occurred_at": START + timedelta(seconds=second),
    }
