"""Admission control: a bound on the requests the model path holds at once.

Past the bound a request is refused at once (503 with Retry-After) instead of joining a
queue whose wait grows without limit: the requests that are admitted keep a bounded
latency, and a client (or nginx's next upstream) can go elsewhere or come back.

The gate is ASGI middleware in front of routing, and a refusal is a prebuilt response:
under a flood of clients that retry at once (no backoff), refusals are most of the work,
and through FastAPI's routing, validation and exception handlers each cost enough to
starve the admitted requests of the event loop (measured: `recsys bench overload`).
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from app import metrics
from app.errors import RETRY_AFTER_SECONDS, prebuilt, send_prebuilt


class Admission:
    def __init__(self, limit: int):
        self.limit, self.in_flight = limit, 0
        self.refusal = prebuilt(
            503,
            "overloaded",
            f"the service is at capacity (more than {limit} requests in flight); retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def alone(self) -> bool:
        """True while at most one request is in flight (the caller's own)."""
        return self.in_flight <= 1


class AdmissionGate:
    """Counts requests whose path starts with one of `routes`' prefixes (the model path;
    prefix -> route template) against the app's `Admission` (app.state.admission); past
    its limit answers the refusal."""

    def __init__(self, app: ASGIApp, *, routes: dict[str, str]):
        self.app, self.routes = app, routes
        self.prefixes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        admission: Admission = scope["app"].state.admission
        if admission.in_flight >= admission.limit:
            await self._refuse(scope, send, admission)
            return
        admission.in_flight += 1  # one event loop: no lock between check and increment
        try:
            await self.app(scope, receive, send)
        finally:
            admission.in_flight -= 1

    async def _refuse(self, scope: Scope, send: Send, admission: Admission) -> None:
        metrics.REJECTED.inc()
        # Not routed, yet counted and logged under the route it asked for.
        prefix = next(p for p in self.prefixes if scope["path"].startswith(p))
        scope.setdefault("state", {})["route_template"] = self.routes[prefix]
        await send_prebuilt(send, scope, admission.refusal, "overloaded")
