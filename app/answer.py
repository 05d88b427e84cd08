"""A /recommendations answer as JSON bytes, built by orjson from values the service
already holds instead of validating them into pydantic models on every request.

The envelope is typed values the service sets; the items are `ModelVersion.item_json`
fragments, whose catalog fields are checked once per item. tests/unit/test_answer.py
holds these bytes to the API contract: byte for byte RecommendationsResponse's own dump
of the same answer, and valid against it.
"""

from dataclasses import dataclass, fields

import orjson

from app.schemas import FallbackReason, RankedBy


@dataclass(frozen=True, slots=True)
class ListAnswer:
    """RecommendationsResponse's fields, in its order, with the items already JSON."""

    user_id: str
    items: list[orjson.Fragment]
    model_version: str
    ranked_by: RankedBy
    fallback: bool
    fallback_reason: FallbackReason | None = None
    shortfall: str | None = None

    @property
    def outcome(self) -> str:
        return f"fallback:{self.fallback_reason}" if self.fallback else "personalised"

    def json(self) -> bytes:
        """Fields left out where None, as the route's pydantic dump did (exclude_none)."""
        values = ((name, getattr(self, name)) for name in NAMES)
        return orjson.dumps({name: value for name, value in values if value is not None})


NAMES = tuple(f.name for f in fields(ListAnswer))
