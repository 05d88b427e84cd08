"""Recommendation logic: personalised lists, seen-item exclusion, cold-start fallback.

Plain functions with keyword-only arguments: the routes call them, a batch job could too.
A list is answered as JSON bytes (app.answer); the others build their response schema
once (validated once) for the route to serialise.
"""

import numpy as np

from app import metrics
from app.answer import ListAnswer
from app.db.queries import UserProfile
from app.errors import DATABASE_ERRORS, NotFoundError
from app.runtime import Runtime
from app.schemas import FallbackReason, FeatureResponse, UserFeature
from app.selection import NO_SELECTION, Selection, shortfall
from app.serving import RecommendRequest
from app.version import ModelVersion


async def recommend(
    *,
    runtime: Runtime,
    user_id: str,
    k: int,
    with_metadata: bool,
    include_seen: bool,
    selection: Selection = NO_SELECTION,
) -> ListAnswer:
    # The version this request finishes on, even across a swap (sticky per user in A/B).
    version = runtime.registry.assignment.choose(user_id)
    allowed = selection.allowed(version)
    try:
        profile = await runtime.profiles.submit(user_id)
    except DATABASE_ERRORS:
        # Still answer: a popular list beats an error page while the database recovers
        # (the database guard logs the outage, rate-limited; not a line per request).
        reason: FallbackReason = "database_unavailable"
        return _popular(version, user_id, k, reason, with_metadata, selection, allowed)
    if profile is None:
        return _popular(version, user_id, k, "unknown_user", with_metadata, selection, allowed)
    exclude = (*(() if include_seen else profile.history), *selection.exclude)
    request = RecommendRequest(profile, k, exclude, allowed)
    ranked = await runtime.models.submit((version, request))
    items = ranked.items_json(version, with_metadata)
    return ListAnswer(
        user_id=user_id,
        items=items,
        model_version=version.version,
        ranked_by="retrieval" if version.ranking is None else "ranking",
        fallback=False,
        fallback_reason=None if profile.history else "no_history",
        shortfall=shortfall(len(items), k, selection),
    )


def _popular(
    version: ModelVersion,
    user_id: str,
    k: int,
    reason: FallbackReason,
    with_metadata: bool,
    selection: Selection,
    allowed: np.ndarray | None,
) -> ListAnswer:
    metrics.FALLBACKS.labels(reason).inc()
    items = []
    for entry in version.popular:
        row = version.row_of.get(entry["id"])
        if row is not None and selection.keeps(version, row, allowed):
            items.append(version.item_json(row, float(entry["score"]), with_metadata))
        if len(items) == k:
            break
    return ListAnswer(
        user_id=user_id,
        items=items,
        model_version=version.version,
        ranked_by="popularity",
        fallback=True,
        fallback_reason=reason,
        shortfall=shortfall(len(items), k, selection),
    )


async def user_features(*, runtime: Runtime, user_id: str) -> FeatureResponse:
    profile: UserProfile | None = await runtime.profiles.submit(user_id)
    if profile is None:
        raise NotFoundError(f"user {user_id!r} not found")
    catalog = runtime.registry.assignment.live.manifest.catalog
    declared = [f.name for f in catalog.user_fields] if catalog else []
    # In the catalog's order of fields (stored JSON keeps no order), then anything else.
    names = [*declared, *sorted(set(profile.attributes) - set(declared))]
    attributes = {name: profile.attributes.get(name) for name in names}
    feature = UserFeature.model_validate(
        {"histories": profile.history, "user_id": profile.user_id, **attributes}
    )
    return FeatureResponse(feature=[feature])
