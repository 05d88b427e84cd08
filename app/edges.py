"""HTTP at the edges: what every route gets without declaring it."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import prebuilt, send_prebuilt

# Like nginx in front (large_client_header_buffers 4 8k): a header line or the request
# target over 8 KiB, or all headers over 32 KiB, is refused. uvicorn's httptools parser
# has no limit of its own, so an instance reached directly would take megabytes.
MAX_LINE = 8 * 1024
MAX_HEADERS = 32 * 1024
MAX_BODY = 256 * 1024  # an events batch, as nginx's client_max_body_size


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
    """431 (or 414 for the request target, 413 for a declared body) JSON, before any
    routing, for requests whose head exceeds the limits above."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.too_large = prebuilt(431, "headers_too_large", "a header line over 8 KiB or "
                                   "all headers over 32 KiB")  # fmt: skip
        self.too_long = prebuilt(414, "uri_too_long", "the request target is over 8 KiB")
        self.too_big = prebuilt(413, "body_too_large", "the request body is over 256 KiB")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            outcome = "body_too_large" if refusal is self.too_big else "headers_too_large"
            await send_prebuilt(send, scope, refusal, outcome)
            return
        if _streamed(scope):  # no length declared: read it here, at most the limit
            body = await _read_at_most(receive, MAX_BODY)
            if body is None:
                await send_prebuilt(send, scope, self.too_big, "body_too_large")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[Message, Message] | None:
        if len(scope["raw_path"] or b"") + len(scope["query_string"]) > MAX_LINE:
            return self.too_long
        total = 0
        for name, value in scope["headers"]:
            size = len(name) + len(value)
            if size > MAX_LINE:
                return self.too_large
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
                return self.too_big  # (a body with no length is measured as it is read)
            total += size
        return self.too_large if total > MAX_HEADERS else None


def _streamed(scope: Scope) -> bool:
    """A body sent in chunks, without a Content-Length (rare: clients send one)."""
    return any(name == b"transfer-encoding" for name, _ in scope["headers"]) and not any(
        name == b"content-length" for name, _ in scope["headers"]
    )


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body already read, then the connection's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
