"""Per request: an id that follows it through every log, a latency histogram by route
and status, and one structured access-log line (route, status, latency, outcome).

A pure ASGI middleware (no BaseHTTPMiddleware: that would run each request in an extra
task and buffer its body), outermost, so it times and counts everything the app answers.
"""

import re
import time
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.accesslog import AccessLog

REQUEST_ID_HEADER = b"x-request-id"
# What nginx passes on (see nginx/templates): kept as it is only when it cannot break
# the logs and headers it is echoed into; anything else is replaced by a fresh id.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def set_outcome(scope: Scope, outcome: str) -> None:
    """Name what a request came to ("personalised", "fallback", an error code) for its
    access-log line, in the request's scope (`request.scope`; what `request.state` wraps,
    without building that wrapper on every request)."""
    scope.setdefault("state", {})["outcome"] = outcome


class Observe:
    def __init__(self, app: ASGIApp, *, access: AccessLog | None = None):
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, method = time.perf_counter(), scope["method"]
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        state = scope.setdefault("state", {})
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered (500 JSON) by the app's outermost handler, after this returns.
            state.setdefault("outcome", "internal_error")
            raise
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or state.get("route_template", "unmatched")
            metrics.observe_request(template, method, status, seconds)
            if self.access is not None:
                # No user id and no raw path: the route template says what was asked,
                # not by whom.
                client = scope.get("client")
                self.access.write(
                    request_id=rid,
                    client=client[0] if client else None,
                    method=method,
                    route=template,
                    status=status,
                    latency_ms=round(seconds * 1000, 2),
                    outcome=state.get("outcome") or ("ok" if status < 400 else "error"),
                )
            request_id.reset(token)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode() if _SAFE_ID.fullmatch(value) else None
    return None
