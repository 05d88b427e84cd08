"""The API against real artifacts and a real database of each backend (MovieLens 100K)."""

import asyncio
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import DatabaseSettings

pytestmark = [pytest.mark.movielens, pytest.mark.model]


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


async def test_head_is_answered_wherever_get_is(client) -> None:
    for path in (url(client, "healthz"), url(client, "recommendations", user_id="1")):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]


async def test_method_not_allowed_says_what_is(client) -> None:
    response = await client.post(url(client, "healthz"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_health_reports_version_and_readiness_the_database(client) -> None:
    live = await client.get(url(client, "healthz"))
    assert live.status_code == 200 and live.json()["model_version"]
    ready = await client.get(url(client, "readyz"))
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok" and ready.json()["breaker"] == "closed"


async def test_list_is_ordered_by_the_exported_rankers_score(
    client, artifacts_dir: Path, movielens_dir: Path, loaded_database: str
) -> None:
    """The served order and scores are the full ranking SavedModel's (the offline
    reference, raw features in, one call per pair), on user features built here from the
    original files (user 1's attributes, last items newest first, their stars) and item
    features read from the database: the fast path (query side once, item vectors
    precomputed at export) may not drift from it."""
    import json

    import numpy as np
    import tensorflow as tf

    from app.db.engine import create_engine
    from training.contract import build_contract
    from training.dataset import item_columns, read_catalog

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
    engine = create_engine(DatabaseSettings(url=loaded_database))
    try:
        catalog = await read_catalog(engine)
    finally:
        await engine.dispose()
    n = len(items)
    rows = np.searchsorted(catalog.item_ids.astype(str), items)  # item ids are sorted
    contract = build_contract(catalog, length)
    pairs = {
        "user_id": tf.constant(["1"] * n),
        "age": tf.constant([24] * n, dtype=tf.float32),
        "gender": tf.constant(["M"] * n),
        "occupation": tf.constant(["technician"] * n),
        "zip_code": tf.constant(["85711"] * n),
        "history": tf.constant([[e[2] for e in recent] + [""] * pad] * n),
        "history_ratings": tf.constant([[e[3] for e in recent] + [np.nan] * pad] * n),
        **{f: tf.constant(v) for f, v in item_columns(catalog, rows, contract).items()},
    }
    ranker = tf.saved_model.load(str(folder / "ranker")).signatures["serving_default"]
    expected = ranker(**pairs)["score"].numpy()
    served = np.array([item["score"] for item in body["items"]])
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    assert (np.diff(served) <= 0).all()


async def _batches(client) -> tuple[float, float]:
    """(micro-batches run, requests in them) by the model stage, read from /metrics."""
    samples = {}
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("recsys_batch_size_") and 'stage="models"' in line:
            name, value = line.rsplit(" ", 1)
            samples[name.split("{")[0]] = float(value)
    # No series before the stage's first batch (this test may run first).
    return samples.get("recsys_batch_size_count", 0.0), samples.get("recsys_batch_size_sum", 0.0)


async def test_concurrent_requests_are_batched_and_answer_as_alone(client, ratings) -> None:
    """One at a time every request is its own batch; 48 at once share a few batches (seen
    in /metrics), and every user gets exactly the list they got alone."""

    async def items(user_id: str) -> list[dict]:
        response = await client.get(url(client, "recommendations", user_id=user_id))
        assert response.status_code == 200 and response.json()["fallback"] is False
        return response.json()["items"]

    users = sorted(ratings, key=int)[:48]
    runs, requests = await _batches(client)
    alone = [await items(u) for u in users]
    runs_alone, requests_alone = await _batches(client)
    assert (runs_alone - runs, requests_alone - requests) == (48, 48)
    together = await asyncio.gather(*(items(u) for u in users))
    runs_together, requests_together = await _batches(client)
    assert requests_together - requests_alone == 48
    assert runs_together - runs_alone < 24  # at least two requests per batch on average
    for one, many in zip(alone, together, strict=True):
        assert [i["id"] for i in one] == [i["id"] for i in many]
        assert [i["score"] for i in one] == pytest.approx([i["score"] for i in many], abs=1e-5)


def _sample(text: str, name: str, **labels: str) -> float:
    """A sample's value from /metrics text (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_metrics_count_requests_by_route_and_status_and_name_the_version(client) -> None:
    route = {"route": "/recommendations/{user_id}", "method": "GET"}
    name = "recsys_http_request_duration_seconds_count"
    before = (await client.get("/metrics")).text
    assert (await client.get(url(client, "recommendations", user_id="1"))).status_code == 200
    assert (await client.get("/recommendations/1", params={"k": 0})).status_code == 422
    after = (await client.get("/metrics")).text
    assert (
        _sample(after, name, status="200", **route)
        == _sample(before, name, status="200", **route) + 1
    )
    assert (
        _sample(after, name, status="422", **route)
        == _sample(before, name, status="422", **route) + 1
    )
    live = (await client.get("/healthz")).json()["model_version"]
    assert _sample(after, "recsys_model_info", version=live, role="live") == 1
    assert _sample(after, "recsys_model_loads_total", outcome="loaded") >= 1
