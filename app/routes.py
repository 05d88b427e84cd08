"""HTTP routes: parse, call one service function, return a response schema.

Responses are serialised once by pydantic-core (the schema was validated when the
service built it) and returned as bytes, so FastAPI does not validate them again; a
/recommendations answer is built as JSON bytes directly (app.answer), nothing validated
per request.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app import metrics
from app import recommend as service
from app.deps import runtime_of
from app.fastroute import OneModelRoute
from app.observe import set_outcome
from app.schemas import ErrorResponse, FeatureResponse, HealthResponse, RecommendationsResponse
from app.selection import NO_SELECTION, Selection, selection_from

router = APIRouter(route_class=OneModelRoute)
# One comma-separated value, short enough that the request line stays under 8 KiB.
Exclude = Annotated[
    str, Query(max_length=500, description="Item ids never to answer with, comma-separated.")
]
UserId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$", description="User id."),
]
# Every route may also answer these: a request line or headers past the limits
# (app.edges), bad input, an internal error, the database or the model path unavailable.
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse},
    414: {"model": ErrorResponse},
    431: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    500: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


def selection_of(request: Request, exclude: str) -> Selection:
    """The request's exclusions and its filters on the live version's filterable fields."""
    filters = runtime_of(request).registry.assignment.live.filters
    fields = filters.fields if filters is not None else []
    query = request.query_params
    if not exclude and not any(name in query for name in fields):
        return NO_SELECTION  # the common request: nothing to build
    params = {name: query.getlist(name) for name in fields}
    return selection_from(params, [exclude], fields)


def json(body: BaseModel, status: int = 200) -> Response:
    payload = body.model_dump_json(exclude_none=True)
    return Response(payload, status_code=status, media_type="application/json")


@router.get(
    "/recommendations/{user_id}",
    response_model=RecommendationsResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
)
async def recommendations(
    user_id: UserId,
    request: Request,
    k: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
    return_metadata: Annotated[
        bool, Query(alias="returnMetadata", description="Add title, genres, release date.")
    ] = False,
    include_seen: Annotated[
        bool, Query(alias="includeSeen", description="Allow items the user already had.")
    ] = False,
    exclude: Exclude = "",
) -> Response:
    """The user's list, best first. Business filters: any categorical item field of the
    catalog as a parameter (MovieLens: `genres=Comedy`; repeated or comma-separated
    values match any of them; several fields must all match; `GET /filters` lists them)."""
    runtime = runtime_of(request)
    answer = await service.recommend(
        runtime=runtime,
        user_id=user_id,
        k=k,
        with_metadata=return_metadata,
        include_seen=include_seen,
        selection=selection_of(request, exclude),
    )
    set_outcome(request.scope, answer.outcome)
    return Response(answer.json(), media_type="application/json")


@router.get(
    "/feature/{user_id}",
    response_model=FeatureResponse,
    responses={**ERRORS, 404: {"model": ErrorResponse}},
)
async def feature(user_id: UserId, request: Request) -> Response:
    return json(await service.user_features(runtime=runtime_of(request), user_id=user_id))


@router.get("/healthz", response_model=HealthResponse, response_model_exclude_none=True)
async def healthz(request: Request) -> Response:
    """Liveness: never waits on the database (what serves is in memory; LIVE is one small
    file read). "degraded" while LIVE names a version that was refused (an older one
    serves); `refused` says why."""
    versions = runtime_of(request).registry.describe()
    return json(HealthResponse(status=_status(versions), **versions))


@router.get(
    "/readyz",
    response_model=HealthResponse,
    response_model_exclude_none=True,
    responses={503: {"model": HealthResponse}},
)
async def readyz(request: Request) -> Response:
    """Readiness: a version loaded and the database reachable within the read deadline
    (503 otherwise: requests would get popular fallbacks), with the versions."""
    runtime = runtime_of(request)
    guard, versions = runtime.guard, runtime.registry.describe()
    reachable = await guard.check()
    body = HealthResponse(
        status=_status(versions) if reachable else "degraded",
        database="ok" if reachable else "unavailable",
        breaker="open" if guard.is_open else "closed",
        **versions,
    )
    return json(body, status=200 if reachable else 503)


def _status(versions: dict) -> Literal["ok", "degraded"]:
    return "ok" if versions["live_pointer"] == versions["model_version"] else "degraded"


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)


# The model path, counted against RECSYS_SERVING_MAX_IN_FLIGHT (app.admission): each
# route's path prefix -> its template.
ADMITTED = {
    route.path.split("{")[0]: route.path
    for route in router.routes
    if isinstance(route, APIRoute) and route.name in ("recommendations", "feature")
}
