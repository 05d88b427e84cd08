"""Response schemas: the API contract clients depend on (see DESIGN.md)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

# What a catalog field can hold in an answer: its stored value, or a multi-valued
# field's values as a list.
FieldValue = str | int | float | bool | list[str] | None


RankedBy = Literal["ranking", "retrieval", "popularity"]
FallbackReason = Literal["unknown_user", "no_history", "database_unavailable"]


class RecommendedItem(BaseModel):
    """With returnMetadata=true each item also has the catalog's metadata fields (for
    MovieLens: title, genres as a list, release_date, url)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, FieldValue]

    id: str
    score: float


class RecommendationsResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str
    ranked_by: RankedBy = Field(
        description="ranking: retrieval then the ranking model; retrieval: the two-tower "
        "score alone; popularity: the non-personalised fallback."
    )
    fallback: bool = Field(description="True when the list is not personalised.")
    fallback_reason: FallbackReason | None = None
    shortfall: str | None = Field(
        default=None,
        description="Present when fewer than k items are answered: why (too few items "
        "match the filters and exclusions).",
    )


class SimilarItemsResponse(BaseModel):
    item_id: str
    items: list[RecommendedItem] = Field(description="Best first; score: cosine similarity.")
    model_version: str
    shortfall: str | None = None


class UsersResponse(BaseModel):
    users: list[str]


class ItemsResponse(BaseModel):
    items: list[RecommendedItem] = Field(description="Each with its metadata; score 0.")
    unknown: list[str] = Field(default=[], description="Asked-for ids not in the catalog.")


class UserFeature(BaseModel):
    """The user's stored attributes: the catalog's user fields by name (for MovieLens:
    age, gender, occupation, zip_code), beside the id and the history."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, FieldValue]

    histories: list[str] = Field(description="Item ids, most recent first.")
    user_id: str


class FeatureResponse(BaseModel):
    # A list of one object: the shape existing clients already parse.
    feature: list[UserFeature]


class RefusedVersion(BaseModel):
    version: str
    reason: str
    refused_at: str = Field(description="When it was refused (UTC, ISO 8601).")


class Versions(BaseModel):
    """Which versions serve, and which were refused."""

    model_version: str = Field(description="The version serving users outside any A/B split.")
    live_pointer: str | None = Field(
        description="What LIVE names; differs from model_version while that one is refused."
    )
    candidate_version: str | None = None
    candidate_share: float | None = Field(default=None, description="Users sent to the candidate.")
    refused: list[RefusedVersion] = []


class HealthResponse(Versions):
    """Liveness (/healthz: from memory, never the database) and readiness (/readyz)."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"] | None = Field(
        default=None, description="Readiness only: reachable within a short deadline."
    )
    breaker: Literal["closed", "open"] | None = Field(
        default=None, description="Readiness only: open while reads fail fast (fallbacks)."
    )


class ReloadResponse(Versions):
    changed: bool = Field(description="True when this reload changed what serves.")


class ErrorDetail(BaseModel):
    location: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


MAX_EVENTS = 500  # per post: RECSYS_SERVING_MAX_EVENTS_PER_POST may lower it, not raise it
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


class EventRequest(BaseModel):
    """One interaction of a user with an item, as it happened."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id = Field(description="A new id creates the user (no attributes).")
    item_id: Id = Field(description="Must be an item of the catalog.")
    type: str = Field(description="One of the catalog's event types (MovieLens: rating, "
                      "view, click, like, add_to_list).")  # fmt: skip
    value: StrictInt | StrictFloat | None = Field(
        default=None, description="The rating, for type 'rating' (within the catalog's range)."
    )
    timestamp: datetime | StrictInt | StrictFloat | None = Field(
        default=None,
        description="When it happened: ISO 8601 (no zone means UTC) or unix seconds; default now.",
    )
    event_id: Id | None = Field(
        default=None, description="The client's id: a retried post with it stores it once."
    )


class EventsRequest(BaseModel):
    """A batch of events, stored all together or not at all. A single event object (not
    wrapped in `events`) is accepted as a batch of one."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventRequest] = Field(min_length=1, max_length=MAX_EVENTS)

    @model_validator(mode="before")
    @classmethod
    def _one_event(cls, data: Any) -> Any:
        if isinstance(data, dict) and "events" not in data and "user_id" in data:
            return {"events": [data]}
        return data


class EventsResponse(BaseModel):
    received: int
    stored: int
    duplicates: int = Field(description="Events already stored (same event_id, or the same "
                            "user, item, type and time): not stored again.")  # fmt: skip
    users_created: int
