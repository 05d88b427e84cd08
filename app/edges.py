"""HTTP at the edges: what every route gets without declaring it."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


def allow_with_head(allow: str) -> str:
    """An `Allow` header that also names HEAD where GET is allowed (HeadAsGet serves it)."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.append("HEAD")
    return ", ".join(methods)
