"""Real-time feedback: posted events are checked against the catalog and stored at once.

A batch is all or nothing: every problem of every event is reported (named by its place,
`events[2].item_id`) and nothing is stored, or all of it is. The catalog the database
holds says which event types exist and whether ratings do (and their range); the items
must be in it; an unknown user id is created. The next /recommendations call reads
the stored events as part of the user's history and seen set.
"""

import math
from datetime import UTC, datetime, timedelta

from app import metrics
from app.catalog import CatalogConfig
from app.db.writes import NewEvent, Stored, missing_items, store_events, stored_catalog
from app.errors import InvalidEvents
from app.runtime import Runtime
from app.schemas import ErrorDetail, EventRequest, EventsRequest, EventsResponse

# Versions exported before the catalog contract were MovieLens 100K's.
DEFAULT_TYPES = ("rating", "view", "click", "like", "add_to_list")


async def record_events(*, runtime: Runtime, request: EventsRequest) -> EventsResponse:
    events, serving = request.events, runtime.settings.serving
    if len(events) > serving.max_events_per_post:
        message = f"{len(events)} events; at most {serving.max_events_per_post} per post"
        raise InvalidEvents([ErrorDetail(location="body 'events'", message=message)])
    skew = timedelta(seconds=serving.event_clock_skew_seconds)
    now = datetime.now(UTC)
    served = runtime.registry.assignment.live.manifest.catalog

    async def write() -> Stored:
        async with runtime.engine.begin() as conn:
            catalog = await stored_catalog(conn) or served
            problems = [
                p for i, e in enumerate(events) for p in _problems(i, e, catalog, now + skew)
            ]
            unknown = await missing_items(conn, [e.item_id for e in events])
            problems.extend(_unknown(events, unknown))
            if problems:
                raise InvalidEvents(problems)
            return await store_events(conn, [_new(e, now) for e in events])

    try:
        async with runtime.writes.turn():  # SQLite: one writer at a time (app.db.writegate)
            stored = await runtime.guard.run(
                write, deadline=runtime.settings.database.write_deadline_seconds
            )
    except InvalidEvents:
        _rejected(len(events))
        raise
    metrics.EVENTS.labels("stored").inc(stored.stored)
    metrics.EVENTS.labels("duplicate").inc(stored.duplicates)
    return EventsResponse(received=len(events), **vars(stored))


def _problems(i: int, event: EventRequest, catalog: CatalogConfig | None, latest: datetime):
    """(field, what is wrong) for one event, before any database work."""
    where = f"body 'events[{i}]"
    types = catalog.interactions.event_types if catalog else DEFAULT_TYPES
    if event.type not in types:
        yield ErrorDetail(
            location=f"{where}.type'",
            message=f"{event.type!r} is not an event type of this catalog ({', '.join(types)})",
        )
    yield from _rating_problems(f"{where}.value'", event, catalog)
    if event.timestamp is not None:
        moment = _utc(event.timestamp)
        if moment is None:
            yield ErrorDetail(location=f"{where}.timestamp'", message="is not a valid time")
        elif moment > latest:
            yield ErrorDetail(location=f"{where}.timestamp'", message="is in the future")


def _rating_problems(where: str, event: EventRequest, catalog: CatalogConfig | None):
    rated = catalog is None or catalog.interactions.rating is not None
    if event.value is None:
        if event.type == "rating":
            yield ErrorDetail(location=where, message="a rating event needs a value")
        return
    if not rated:
        yield ErrorDetail(location=where, message="this catalog has no ratings")
    elif not math.isfinite(event.value):
        yield ErrorDetail(location=where, message="must be a finite number")
    elif catalog is not None and catalog.interactions.rating_range is not None:
        low, high = catalog.interactions.rating_range
        if not low <= event.value <= high:
            yield ErrorDetail(location=where, message=f"{event.value} is outside {low}..{high}")


def _unknown(events: list[EventRequest], unknown: set[str]) -> list[ErrorDetail]:
    return [
        ErrorDetail(
            location=f"body 'events[{i}].item_id'",
            message=f"{e.item_id!r} is not an item of the catalog",
        )
        for i, e in enumerate(events)
        if e.item_id in unknown
    ]


def _new(event: EventRequest, now: datetime) -> NewEvent:
    return NewEvent(
        user_id=event.user_id,
        item_id=event.item_id,
        event_type=event.type,
        rating=event.value,
        occurred_at=(None if event.timestamp is None else _utc(event.timestamp)) or now,
        event_id=event.event_id,
    )


def _utc(moment: datetime | float) -> datetime | None:
    """The moment in UTC (unix seconds taken as such); None for a number no date has."""
    if not isinstance(moment, datetime):
        try:
            return datetime.fromtimestamp(moment, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rejected(count: int) -> None:
    metrics.EVENTS.labels("rejected").inc(count)
