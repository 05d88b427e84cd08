"""Every error is JSON that says what was wrong; no stack trace ever reaches a client."""

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import Message, Scope, Send

from app.db.guard import DatabaseUnavailable
from app.observe import set_outcome
from app.schemas import ErrorBody, ErrorDetail, ErrorResponse
from app.selection import UnknownFilter

log = logging.getLogger(__name__)

# What a sick, hung or unreachable database raises, across drivers: the pool's own
# checkout timeout and a missed deadline included. asyncpg's own: the profile read on
# PostgreSQL uses it directly (app.db.profiles).
DATABASE_ERRORS = (
    OperationalError,
    InterfaceError,
    DBAPIError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
    PoolTimeout,
    DatabaseUnavailable,
)
RETRY_AFTER_SECONDS = 1


class NotFoundError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidEvents(Exception):
    """Posted events that cannot be stored; `details` names each problem's field."""

    def __init__(self, details: list[ErrorDetail]):
        super().__init__("; ".join(f"{d.location}: {d.message}" for d in details))
        self.details = details


def error_response(status: int, code: str, message: str, details=(), headers=None) -> JSONResponse:  # type: ignore[no-untyped-def]
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=list(details)))
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def prebuilt(status: int, code: str, message: str, headers=None) -> tuple[Message, Message]:  # type: ignore[no-untyped-def]
    """An error response as its two ASGI messages, built once, for middleware that answers
    before routing (a refusal at the edge costs two sends, not a response object)."""
    response = error_response(status, code, message, headers=headers)
    start = {"type": "http.response.start", "status": status, "headers": response.raw_headers}
    return start, {"type": "http.response.body", "body": response.body}


async def send_prebuilt(
    send: Send, scope: Scope, answer: tuple[Message, Message], outcome: str
) -> None:
    """Send a prebuilt answer, naming `outcome` for the access log."""
    set_outcome(scope, outcome)
    start, body = answer
    await send(start)
    await send(body)


def _answer(  # type: ignore[no-untyped-def]
    request: Request, status: int, code: str, message: str, details=(), headers=None
) -> JSONResponse:
    """The error response, with its code named as the request's outcome in the access log."""
    set_outcome(request.scope, code)
    return error_response(status, code, message, details, headers)


def _location(loc: tuple) -> str:
    where, *name = loc or ("request",)
    kind = {"query": "query parameter", "path": "path parameter"}.get(str(where), str(where))
    return f"{kind} '{'.'.join(map(str, name))}'" if name else kind


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(location=_location(tuple(e["loc"])), message=e["msg"]) for e in exc.errors()
    ]
    message = "; ".join(f"{d.location}: {d.message}" for d in details)
    return _answer(request, 422, "invalid_request", message, details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # a 405 says what is allowed
        headers["Allow"] = allow_with_head(headers["Allow"])
    return _answer(request, exc.status_code, code, str(exc.detail), headers=headers or None)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFoundError)
    return _answer(request, 404, "not_found", exc.message)


async def _invalid_events(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidEvents)
    return _answer(request, 422, "invalid_events", str(exc), exc.details)


async def _unknown_filter(request: Request, exc: Exception) -> JSONResponse:
    return _answer(request, 422, "invalid_request", str(exc))


async def _database(request: Request, exc: Exception) -> JSONResponse:
    # Not logged per request: the database guard reports an outage, rate-limited.
    return _answer(
        request,
        503,
        "database_unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return _answer(request, 500, "internal_error", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(InvalidEvents, _invalid_events)
    app.add_exception_handler(UnknownFilter, _unknown_filter)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)
    app.add_exception_handler(Exception, _unexpected)


def allow_with_head(allow: str) -> str:
    """An `Allow` header that also names HEAD where GET is allowed (HeadAsGet serves it)."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.append("HEAD")
    return ", ".join(methods)
