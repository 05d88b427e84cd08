"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis).

Every documented operation gets generated requests, valid and invalid (schemathesis'
examples, coverage and fuzzing phases, positive and negative data), sent in-process to
the real app: its lifespan loads a trained version, MovieLens 100K is in SQLite. Every
response must pass all of schemathesis' checks: no 5xx, a documented status code, the
documented content type and headers, a body matching the response schema, invalid input
rejected with a 4xx, valid input accepted, an undocumented method answered 405 with an
`Allow` header, and so on. None is disabled: none gives a false positive on this API.
"""

import copy
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.main import create_app
from app.settings import ArtifactSettings, DatabaseSettings, Settings

pytestmark = [pytest.mark.movielens, pytest.mark.model]

OPERATIONS = {
    "GET /recommendations/{user_id}",
    "GET /feature/{user_id}",
    "GET /healthz",
    "GET /readyz",
    "POST /events",
    "GET /items/{item_id}/similar",
    "GET /items",
    "GET /filters",
    "GET /users",
    "GET /model/curves.png",
}
WRITES = {"POST /events"}  # fuzzed against a database of their own
# The schema does not depend on the database or the artifacts (the admin and benchmark
# routes are never in it), so it is read at import and schemathesis collects one test per
# operation; the app fixture checks that the real app serves the very same schema. (Not
# `schemathesis.pytest.from_fixture`: with pytest 9.2 it fails on `request.node._nodeid`,
# which pytest no longer has.)
OPENAPI = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))

# Random strings almost never name a MovieLens user (ids "1".."943"): without help every
# request would take the unknown-user paths (popular fallback, 404) and never the model.
MOVIELENS_USERS = st.integers(min_value=1, max_value=943).map(str)
VALID_USER_ID = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy:
    """Half the generated user ids become real users, so the model path is fuzzed too.

    Only a valid id is replaced: an invalid one is what a negative case is testing. The
    hook sees the id percent-encoded, as it goes into the URL (the app decodes it)."""
    user_id = (path_parameters or {}).get("user_id")
    if not isinstance(user_id, str) or not VALID_USER_ID.fullmatch(unquote(user_id)):
        return st.just(path_parameters)
    real = MOVIELENS_USERS.map(lambda user: {**path_parameters, "user_id": user})
    return st.one_of(st.just(path_parameters), real)


def made_real(body: Any) -> Any:
    """Events the schema allows but the catalog does not (an item it lacks, a type it does
    not declare, a rating out of range, a time in the future) are refused with 422 by
    design: valid parts of generated events are made real (a MovieLens item, a declared
    type, a past time), so positive cases reach the store. Parts already invalid stay
    as they are: they are what a negative case is testing. (In the test, not a
    schemathesis hook: hooks do not reach every phase's cases.)"""
    if not isinstance(body, dict):
        return body
    events = body.get("events") if "events" in body else [body]
    for n, event in enumerate(events if isinstance(events, list) else []):
        if isinstance(event, dict):
            _make_real(event, n)
    return body


def _make_real(event: dict, n: int) -> None:
    if isinstance(event.get("item_id"), str) and VALID_USER_ID.fullmatch(event["item_id"]):
        event["item_id"] = str(1 + (len(event["item_id"]) * 37 + n) % 1682)
    if isinstance(event.get("type"), str):
        event["type"] = "click"
    if isinstance(event.get("value"), int | float) and not isinstance(event["value"], bool):
        event["value"] = 3.0
    stamp = event.get("timestamp")
    if isinstance(stamp, str):
        event["timestamp"] = "2020-01-01T00:00:00Z"
    elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
        event["timestamp"] = 1_577_836_800  # the same moment in unix seconds


@pytest.fixture(scope="module")
def writable(databases, movielens, artifacts_dir: Path) -> FastAPI:
    """An app on a MovieLens database of its own, for the operations that write."""
    from tests.conftest import load_into

    url = databases.migrated("sqlite")
    load_into(url, movielens)
    return create_app(
        Settings(database=DatabaseSettings(url=url), artifacts=ArtifactSettings(dir=artifacts_dir))
    )


@pytest.fixture(scope="module")
def app(loaded_database: str, artifacts_dir: Path) -> FastAPI:
    """The real app. Schemathesis runs its lifespan (the version loaded, the database
    opened) at the first request of each test and ends it when that test ends."""
    app = create_app(
        Settings(
            database=DatabaseSettings(url=loaded_database),
            artifacts=ArtifactSettings(dir=artifacts_dir),
        )
    )
    assert app.openapi() == OPENAPI
    return app


def test_schema_covers_every_operation() -> None:
    """What is fuzzed: every route but /metrics (kept out of the schema on purpose)."""
    assert {result.ok().label for result in schema.get_all_operations()} == OPERATIONS


@pytest.mark.parametrize("loaded_database", ["sqlite"], indirect=True)
@schema.parametrize()
@settings(
    max_examples=150,  # per operation, fuzzing phase; the coverage phase adds its own
    deadline=None,  # the first request of each operation waits for the lifespan
    derandomize=True,  # the same cases on every run (no example database either)
    suppress_health_check=[HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, app: FastAPI, request) -> None:
    # In-process through schemathesis' ASGI transport, all default checks.
    target = app
    if case.operation.label in WRITES:
        target, case.body = request.getfixturevalue("writable"), made_real(case.body)
    case.call_and_validate(app=target)
