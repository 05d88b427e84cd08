"""The synthetic catalog behind `recsys bench serve --items`: MovieLens' shape, real structure."""

from collections import Counter, defaultdict

from training.bench.catalog import synthetic_catalog


def test_shape_matches_what_the_loader_and_the_towers_read() -> None:
    data = synthetic_catalog(users=200, items=3000, interactions=8000, seed=1)
    assert len(data.users) == 200 and len(data.items) == 3000
    assert {u["id"] for u in data.users} == {str(i) for i in range(1, 201)}
    assert set(data.items[0]) == {"id", "title", "genres", "release_date", "url"}
    assert set(data.users[0]) == {"id", "age", "gender", "occupation", "zip_code"}
    times = [r["occurred_at"] for r in data.interactions]
    assert times == sorted(times)  # insertion order follows time, as serving expects
    pairs = [(r["user_id"], r["item_id"]) for r in data.interactions]
    assert len(pairs) == len(set(pairs))  # one rating per (user, item)
    assert 0.5 * 8000 < len(pairs) <= 1.5 * 8000
    assert all(1 <= r["rating"] <= 5 for r in data.interactions)


def test_popularity_is_skewed_and_tastes_are_clustered() -> None:
    data = synthetic_catalog(users=300, items=5000, interactions=20000, seed=2)
    counts = Counter(r["item_id"] for r in data.interactions)
    top = sum(c for _, c in counts.most_common(50))  # 1% of the items
    assert top > 0.10 * len(data.interactions)
    genres = {i["id"]: i["genres"] for i in data.items}
    by_user = defaultdict(list)
    for r in data.interactions:
        by_user[r["user_id"]].append(genres[r["item_id"]])
    # A user's most common genre set covers far more of their items than chance would.
    share = [Counter(g).most_common(1)[0][1] / len(g) for g in by_user.values() if len(g) >= 10]
    assert sum(share) / len(share) > 0.5


def test_same_seed_same_catalog() -> None:
    first = synthetic_catalog(users=50, items=400, interactions=1000, seed=3)
    assert first == synthetic_catalog(users=50, items=400, interactions=1000, seed=3)
    assert first != synthetic_catalog(users=50, items=400, interactions=1000, seed=4)
