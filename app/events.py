"""POST /events: interactions as they happen (see app/feedback.py for what is checked).

Writes sit behind the same public nginx as reads, so when `RECSYS_API_KEY` is set they
need it in `X-API-Key` (401 otherwise); the page sends the key its user typed in.
"""

import hmac

from fastapi import APIRouter, Request, Response

from app import feedback
from app.deps import runtime_of
from app.errors import error_response
from app.routes import ERRORS, json
from app.schemas import ErrorResponse, EventsRequest, EventsResponse

router = APIRouter()
API_KEY_HEADER = "x-api-key"


def write_allowed(request: Request) -> bool:
    key = request.app.state.api_key
    given = request.headers.get(API_KEY_HEADER, "")
    return key is None or hmac.compare_digest(given.encode(), key.encode())


@router.post(
    "/events",
    response_model=EventsResponse,
    # 400: a body that is not JSON at all.
    responses={**ERRORS, 400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
)
async def post_events(events: EventsRequest, request: Request) -> Response:
    """Record one event or a batch (all stored, or none): the user's next
    recommendations read them, and the next training run learns from them."""
    if not write_allowed(request):
        return error_response(401, "unauthorized", f"a valid {API_KEY_HEADER} header is required")
    return json(await feedback.record_events(runtime=runtime_of(request), request=events))
