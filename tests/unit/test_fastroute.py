"""OneModelRoute against FastAPI's own handler: the same endpoint declared on both route
classes must answer every request the same way (values, 422 errors, OpenAPI schema).

FastAPI's handler is the reference implementation here, so each case runs on both.
"""

from typing import Annotated

import orjson
import pytest
from fastapi import APIRouter, FastAPI, Header, Path, Query, Request, Response
from fastapi.testclient import TestClient

from app.errors import install_error_handlers
from app.fastroute import OneModelRoute
from app.routes import router as service_router

Key = Annotated[str, Path(min_length=1, max_length=8, pattern=r"^[a-z0-9]+$")]


def declare(router: APIRouter, prefix: str) -> None:
    @router.get(prefix + "/{key}")
    async def echo(
        key: Key,
        request: Request,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        flag: Annotated[bool, Query(alias="returnFlag")] = False,
        ratio: Annotated[float | None, Query(gt=0)] = None,
        note: Annotated[str, Query(max_length=5)] = "",
    ) -> Response:
        seen = {"key": key, "k": k, "flag": flag, "ratio": ratio, "note": note}
        return Response(orjson.dumps({**seen, "path": request.url.path}))

    @router.get(prefix + "/needs/{key}")
    async def required(key: Key, q: Annotated[int, Query()]) -> Response:
        return Response(orjson.dumps({"key": key, "q": q}))


def apps() -> tuple[TestClient, TestClient]:
    clients = []
    for route_class in (None, OneModelRoute):
        router = APIRouter(route_class=route_class) if route_class else APIRouter()
        declare(router, "/x")
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(router)
        clients.append(TestClient(app, raise_server_exceptions=False))
    return clients[0], clients[1]


REFERENCE, FAST = apps()
CASES = [
    "/x/abc",
    "/x/abc?k=5&returnFlag=true&ratio=0.5&note=hi",
    "/x/abc?k=2&k=3",  # repeated: the last value, as FastAPI reads it
    "/x/abc?returnFlag=yes&extra=ignored",
    "/x/abc?returnflag=true",  # aliases are case-sensitive
    "/x/abc?flag=true",  # the Python name is not the parameter's name
    "/x/abc?k=0",
    "/x/abc?k=101",
    "/x/abc?k=ten",
    "/x/abc?k=",
    "/x/abc?returnFlag=maybe",
    "/x/abc?ratio=-1",
    "/x/abc?note=toolong",
    "/x/abc?k=0&returnFlag=maybe&ratio=x",  # several errors, in declaration order
    "/x/ABC",
    "/x/abcdefghij",
    "/x/needs/abc?q=1",
    "/x/needs/abc",
    "/x/needs/abc?q=one",
    "/x/needs/B?q=one",
]


@pytest.mark.parametrize("path", CASES)
def test_one_model_route_answers_as_fastapi_does(path: str) -> None:
    expected, got = REFERENCE.get(path), FAST.get(path)
    assert got.status_code == expected.status_code, got.text
    assert got.json() == expected.json()


def test_errors_name_the_parameter_and_where_it_is() -> None:
    body = FAST.get("/x/ABC?k=0").json()["error"]
    assert body["code"] == "invalid_request"
    locations = [d["location"] for d in body["details"]]
    assert locations == ["path parameter 'key'", "query parameter 'k'"]


def test_openapi_schema_is_unchanged() -> None:
    assert FAST.get("/openapi.json").json() == REFERENCE.get("/openapi.json").json()


def test_endpoints_fastapi_must_handle_keep_its_handler() -> None:
    """A header parameter, a sync endpoint, one returning a model and a list parameter
    (read from repeated keys) are FastAPI's."""
    router = APIRouter(route_class=OneModelRoute)

    @router.get("/h")
    async def header(x_id: Annotated[str, Header()]) -> Response:
        return Response(x_id)

    @router.get("/sync")
    def sync(k: int = 1) -> Response:
        return Response(str(k))

    @router.get("/model")
    async def model(k: int = 1) -> dict:
        return {"k": k}

    @router.get("/many")
    async def many(tag: Annotated[list[str], Query()] = []) -> Response:  # noqa: B006
        return Response(",".join(tag))

    app = FastAPI()
    app.include_router(router)
    client = TestClient(app)
    assert client.get("/h", headers={"x-id": "7"}).text == "7"
    assert client.get("/sync?k=3").text == "3"
    assert client.get("/model?k=4").json() == {"k": 4}
    assert client.get("/many?tag=a&tag=b").text == "a,b"  # every value, not the last


def test_the_hot_routes_take_the_fast_handler() -> None:
    """/recommendations and /feature are declared on OneModelRoute and qualify for it."""
    hot = {
        r.path: r
        for r in service_router.routes
        if getattr(r, "path", "") in ("/recommendations/{user_id}", "/feature/{user_id}")
    }
    assert len(hot) == 2
    for route in hot.values():
        assert isinstance(route, OneModelRoute)
        assert route.get_route_handler().__qualname__ == "_handler.<locals>.handle"
