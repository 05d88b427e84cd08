"""The API against real artifacts and a real database of each backend (MovieLens 100K)."""

from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from app.settings import ArtifactSettings, DatabaseSettings, Settings
from tests.conftest import app_client

pytestmark = [pytest.mark.movielens, pytest.mark.model]


@pytest.fixture(scope="session")
async def client(loaded_database: str, artifacts_dir: Path):
    settings = Settings(
        database=DatabaseSettings(url=loaded_database),
        artifacts=ArtifactSettings(dir=artifacts_dir),
    )
    async with app_client(settings) as client:
        yield client


@pytest.fixture(scope="session")
def ratings(movielens_dir: Path) -> dict[str, list[tuple[int, str]]]:
    """u.data read independently of the project's parser: user -> [(timestamp, item)]."""
    by_user: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for line in (movielens_dir / "u.data").read_text().splitlines():
        user, item, _rating, ts = line.split("\t")
        by_user[user].append((int(ts), item))
    return by_user


@pytest.fixture(scope="session")
def titles(movielens_dir: Path) -> dict[str, tuple[str, list[str]]]:
    genre_names = [
        line.split("|")[0] for line in (movielens_dir / "u.genre").read_text().splitlines() if line
    ]
    result = {}
    for line in (movielens_dir / "u.item").read_bytes().decode("latin-1").splitlines():
        fields = line.split("|")
        genres = [g for g, flag in zip(genre_names, fields[5:], strict=True) if flag == "1"]
        result[fields[0]] = (fields[1], genres)
    return result


def url(client: httpx.AsyncClient, name: str, **params: str) -> str:
    return client.app.url_path_for(name, **params)  # type: ignore[attr-defined]


async def test_recommendations_are_personal_distinct_and_unseen(client, ratings) -> None:
    response = await client.get(url(client, "recommendations", user_id="1"))
    assert response.status_code == 200
    body = response.json()
    ids = [item["id"] for item in body["items"]]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert all(isinstance(i, str) for i in ids)
    assert not set(ids) & {item for _, item in ratings["1"]}
    assert body["fallback"] is False and body["ranked_by"] == "ranking"
    assert body["model_version"]
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert "title" not in body["items"][0]


async def test_heavy_user_still_gets_k_unseen_items(client, ratings) -> None:
    heaviest = max(ratings, key=lambda u: len(ratings[u]))  # user 405: 737 ratings
    response = await client.get(url(client, "recommendations", user_id=heaviest), params={"k": 100})
    ids = [item["id"] for item in response.json()["items"]]
    assert len(ids) == 100 and len(set(ids)) == 100
    assert not set(ids) & {item for _, item in ratings[heaviest]}


async def test_include_seen_allows_history(client, ratings) -> None:
    response = await client.get(
        url(client, "recommendations", user_id="1"), params={"k": 100, "includeSeen": "true"}
    )
    ids = {item["id"] for item in response.json()["items"]}
    assert ids & {item for _, item in ratings["1"]}


async def test_metadata_matches_catalog(client, titles) -> None:
    response = await client.get(
        url(client, "recommendations", user_id="1"), params={"returnMetadata": "true", "k": 20}
    )
    items = response.json()["items"]
    assert len(items) == 20
    for item in items:
        title, genres = titles[item["id"]]
        assert item["title"] == title
        assert item["genres"] == genres
        assert "release_date" in item


async def test_unknown_user_gets_marked_popular_fallback(client) -> None:
    response = await client.get(
        url(client, "recommendations", user_id="no-such-user"), params={"k": 5}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] is True and body["fallback_reason"] == "unknown_user"
    assert body["ranked_by"] == "popularity"
    assert len(body["items"]) == 5
    counts = [item["score"] for item in body["items"]]
    assert counts == sorted(counts, reverse=True)


async def test_feature_lists_history_newest_first(client, ratings) -> None:
    response = await client.get(url(client, "feature", user_id="1"))
    assert response.status_code == 200
    (feature,) = response.json()["feature"]
    assert feature["user_id"] == "1" and feature["age"] == 24 and feature["gender"] == "M"
    assert feature["occupation"] == "technician" and feature["zip_code"] == "85711"
    when = dict((item, ts) for ts, item in ratings["1"])
    assert sorted(feature["histories"]) == sorted(when)
    times = [when[item] for item in feature["histories"]]
    assert times == sorted(times, reverse=True)


async def test_feature_unknown_user_is_404_json(client) -> None:
    response = await client.get(url(client, "feature", user_id="no-such-user"))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "user 'no-such-user' not found"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"k": "0"}, "'k'"),
        ({"k": "1000"}, "'k'"),
        ({"k": "ten"}, "'k'"),
        ({"returnMetadata": "maybe"}, "'returnMetadata'"),
    ],
)
async def test_bad_query_parameters_are_named(client, params, parameter) -> None:
    response = await client.get(url(client, "recommendations", user_id="1"), params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and parameter in error["message"]


async def test_over_long_user_id_is_rejected(client) -> None:
    response = await client.get(url(client, "feature", user_id="x" * 65))
    assert response.status_code == 422
    assert "'user_id'" in response.json()["error"]["message"]


async def test_unknown_route_is_json(client) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_health_reports_version_and_database(client) -> None:
    response = await client.get(url(client, "healthz"))
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_list_is_ordered_by_the_exported_rankers_score(
    client, artifacts_dir: Path, movielens_dir: Path
) -> None:
    """The served order and scores are the ranking SavedModel's, on features built here
    from the original files: user 1's attributes, last 20 items newest first, their stars;
    and the app builds the same request tensors from the database."""
    import json

    import numpy as np
    import tensorflow as tf

    from app.db.queries import fetch_profile
    from app.inputs import call_model, profile_columns

    body = (await client.get(url(client, "recommendations", user_id="1"), params={"k": 20})).json()
    assert body["ranked_by"] == "ranking"
    folder = artifacts_dir / body["model_version"]
    spec = json.loads((folder / "manifest.json").read_text())["feature_spec"]
    length = spec["history_length"]
    events = [
        (int(ts), line, item, float(stars))
        for line, (user, item, stars, ts) in enumerate(
            row.split("\t") for row in (movielens_dir / "u.data").read_text().splitlines()
        )
        if user == "1"
    ]
    recent = sorted(events, reverse=True)[:length]
    pad = length - len(recent)
    items = [item["id"] for item in body["items"]]
    catalog = json.loads((folder / "items.json").read_text())
    n = len(items)
    pairs = {
        "user_id": tf.constant(["1"] * n),
        "age": tf.constant([24] * n, dtype=tf.int64),
        "gender": tf.constant(["M"] * n),
        "occupation": tf.constant(["technician"] * n),
        "zip_code": tf.constant(["85711"] * n),
        "history": tf.constant([[e[2] for e in recent] + [""] * pad] * n),
        "history_ratings": tf.constant([[e[3] for e in recent] + [np.nan] * pad] * n),
        **{f: tf.constant([catalog[i][f] for i in items]) for f in spec["candidate_features"]},
    }
    ranker = tf.saved_model.load(str(folder / "ranker")).signatures["serving_default"]
    expected = ranker(**pairs)
    served = np.array([item["score"] for item in body["items"]])
    np.testing.assert_allclose(served, expected["score"].numpy(), rtol=1e-5, atol=1e-5)
    assert (np.diff(served) <= 0).all()
    # The score does not read the ratings (rating_blend 0); the predicted rating does:
    # the app's own request tensors must give the same ratings as the files' stars.
    runtime = client.app.state.runtime
    async with runtime.engine.connect() as conn:
        profile = await fetch_profile(conn, "1", runtime.settings.serving.max_seen_items)
    app_pairs = profile_columns(runtime.version, [profile] * n)
    app_pairs |= {f: pairs[f].numpy() for f in spec["candidate_features"]}
    app_rating = call_model(runtime.version.ranker_fn, app_pairs)["rating"]
    np.testing.assert_allclose(app_rating, expected["rating"].numpy(), rtol=1e-5, atol=1e-5)
