"""Operator routes, present only when `RECSYS_ADMIN_TOKEN` is set (otherwise 404).

`POST /admin/reload` makes the registry follow LIVE and SPLIT now instead of at its next
poll: 200 with what serves afterwards, or 409 when the version LIVE names was refused
(the previous version keeps serving; the reason is in the body and the log).
"""

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.deps import runtime_of
from app.errors import error_response
from app.schemas import ErrorResponse, ReloadResponse

router = APIRouter(prefix="/admin", include_in_schema=False)


def authorised(request: Request) -> bool:
    token = request.app.state.admin_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={401: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def reload(request: Request) -> Response:
    if not authorised(request):
        denied = error_response(401, "unauthorized", "a valid bearer token is required")
        denied.headers["WWW-Authenticate"] = "Bearer"
        return denied
    registry = runtime_of(request).registry
    changed = await registry.refresh()
    versions = registry.describe()
    refused = {r["version"]: r["reason"] for r in versions["refused"]}
    pointer = versions["live_pointer"]
    if pointer != versions["model_version"] and pointer in refused:
        return error_response(
            409,
            "version_refused",
            f"version {pointer} was refused ({refused[pointer]}); "
            f"still serving {versions['model_version']}",
        )
    body = ReloadResponse(changed=changed, **versions)
    return JSONResponse(body.model_dump(exclude_none=True))
