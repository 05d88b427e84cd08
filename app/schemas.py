"""Response schemas: the API contract clients depend on (see DESIGN.md)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# What a catalog field can hold in an answer: its stored value, or a multi-valued
# field's values as a list.
FieldValue = str | int | float | bool | list[str] | None


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
    ranked_by: Literal["ranking", "retrieval", "popularity"] = Field(
        description="ranking: retrieval then the ranking model; retrieval: the two-tower "
        "score alone; popularity: the non-personalised fallback."
    )
    fallback: bool = Field(description="True when the list is not personalised.")
    fallback_reason: Literal["unknown_user", "no_history", "database_unavailable"] | None = None


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
