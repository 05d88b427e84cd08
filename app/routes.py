"""HTTP routes: parse, call one service function, return a response schema.

Responses are serialised once by pydantic-core (the schema was validated when the
service built it) and returned as bytes, so FastAPI does not validate them again.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import text

from app import metrics
from app import recommend as service
from app.deps import runtime_of
from app.errors import DATABASE_ERRORS
from app.schemas import ErrorResponse, FeatureResponse, HealthResponse, RecommendationsResponse

router = APIRouter()
UserId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$", description="User id."),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse},
    500: {"model": ErrorResponse},
}


def json(body: BaseModel) -> Response:
    return Response(body.model_dump_json(exclude_none=True), media_type="application/json")


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
) -> Response:
    body = await service.recommend(
        runtime=runtime_of(request),
        user_id=user_id,
        k=k,
        with_metadata=return_metadata,
        include_seen=include_seen,
    )
    return json(body)


@router.get(
    "/feature/{user_id}",
    response_model=FeatureResponse,
    responses={**ERRORS, 404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def feature(user_id: UserId, request: Request) -> Response:
    return json(await service.user_features(runtime=runtime_of(request), user_id=user_id))


@router.get("/healthz", response_model=HealthResponse, response_model_exclude_none=True)
async def healthz(request: Request) -> Response:
    """Liveness and readiness: 200 while a model is loaded. "degraded" while the database
    is down (the service still answers with popular items) or while LIVE names a version
    that was refused (an older one serves); `refused` says why."""
    runtime = runtime_of(request)
    database = "ok"
    try:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except DATABASE_ERRORS:
        database = "unavailable"
    versions = runtime.registry.describe()
    healthy = database == "ok" and versions["live_pointer"] == versions["model_version"]
    return json(
        HealthResponse(status="ok" if healthy else "degraded", database=database, **versions)  # type: ignore[arg-type]
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)
