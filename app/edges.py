"""HTTP at the edges: what every route gets without declaring it."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import prebuilt, send_prebuilt

# Like nginx in front (large_client_header_buffers 4 8k): a header line or the request
# target over 8 KiB, or all headers over 32 KiB, is refused. uvicorn's httptools parser
# has no limit of its own, so an instance reached directly would take megabytes.
MAX_LINE = 8 * 1024
MAX_HEADERS = 32 * 1024


class HeadAsGet:
    """HEAD wherever GET is allowed: the GET route answers, with its headers and status,
    and the body is dropped (Content-Length stays what GET would send)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # In place, so what routing adds to the scope (the route) is seen outside too.
        scope["method"] = "GET"
        await self.app(scope, receive, headers_only)


class HeaderLimits:
    """431 (or 414 for the request target) JSON, before any routing, for requests whose
    headers exceed the limits above."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.too_large = prebuilt(431, "headers_too_large", "a header line over 8 KiB or "
                                   "all headers over 32 KiB")  # fmt: skip
        self.too_long = prebuilt(414, "uri_too_long", "the request target is over 8 KiB")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._check(scope)
            if refusal is not None:
                await send_prebuilt(send, scope, refusal, "headers_too_large")
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[Message, Message] | None:
        if len(scope["raw_path"] or b"") + len(scope["query_string"]) > MAX_LINE:
            return self.too_long
        total = 0
        for name, value in scope["headers"]:
            size = len(name) + len(value)
            if size > MAX_LINE:
                return self.too_large
            total += size
        return self.too_large if total > MAX_HEADERS else None
