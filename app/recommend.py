"""Recommendation logic: personalised retrieval, seen-item exclusion, cold-start fallback.

Plain functions with keyword-only arguments: the routes call them, a batch job could too.
"""

import logging
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from app.artifacts import ModelVersion
from app.db.queries import UserProfile, fetch_items, fetch_profile
from app.errors import DATABASE_ERRORS, NotFoundError
from app.inputs import Hit
from app.retrieval import QueryBatcher
from app.schemas import FeatureResponse, RecommendationsResponse, RecommendedItem, UserFeature

log = logging.getLogger(__name__)


async def recommend(
    *,
    engine: AsyncEngine,
    batcher: QueryBatcher,
    version: ModelVersion,
    user_id: str,
    k: int,
    with_metadata: bool,
    include_seen: bool,
    max_seen: int,
) -> RecommendationsResponse:
    try:
        async with engine.connect() as conn:
            profile = await fetch_profile(conn, user_id, max_seen)
    except DATABASE_ERRORS as exc:
        # Still answer: a popular list beats an error page while the database recovers.
        log.warning("serving popular items to %r: database unavailable (%s)", user_id, exc)
        return _fallback(version, user_id, k, "database_unavailable")
    if profile is None:
        response = _fallback(version, user_id, k, "unknown_user")
    else:
        exclude = frozenset() if include_seen else frozenset(profile.history)
        hits = await batcher.search(version, profile, k=k, exclude=exclude)
        response = _response(version, user_id, hits, fallback_reason=None)
        if not profile.history:
            response.fallback_reason = "no_history"
    if with_metadata:
        await _add_metadata(engine, response.items)
    return response


def _fallback(version: ModelVersion, user_id: str, k: int, reason: str) -> RecommendationsResponse:
    hits = [Hit(item_id=p["id"], score=float(p["score"])) for p in version.popular[:k]]
    return _response(version, user_id, hits, fallback_reason=reason)


def _response(
    version: ModelVersion, user_id: str, hits: list[Hit], *, fallback_reason: str | None
) -> RecommendationsResponse:
    personal = fallback_reason is None
    return RecommendationsResponse(
        user_id=user_id,
        items=[RecommendedItem(id=h.item_id, score=round(h.score, 6)) for h in hits],
        model_version=version.version,
        ranked_by=_ranked_by(version) if personal else "popularity",
        fallback=not personal,
        fallback_reason=fallback_reason,  # type: ignore[arg-type]
    )


def _ranked_by(version: ModelVersion) -> Literal["ranking", "retrieval"]:
    return "ranking" if version.ranker_fn is not None else "retrieval"


async def _add_metadata(engine: AsyncEngine, items: list[RecommendedItem]) -> None:
    async with engine.connect() as conn:
        catalog = await fetch_items(conn, [item.id for item in items])
    for item in items:
        row = catalog.get(item.id)
        if row:
            item.title = row["title"]
            item.genres = [g for g in (row["genres"] or "").split("|") if g]
            item.release_date = row["release_date"]
            item.url = row["url"]


async def user_features(*, engine: AsyncEngine, user_id: str, limit: int) -> FeatureResponse:
    async with engine.connect() as conn:
        profile: UserProfile | None = await fetch_profile(conn, user_id, limit)
    if profile is None:
        raise NotFoundError(f"user {user_id!r} not found")
    return FeatureResponse(feature=[UserFeature(histories=profile.history, **profile.attributes())])
