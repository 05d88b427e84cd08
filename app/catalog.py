"""The catalog contract: one declaration of a data set's ids, features and metadata.

A catalog config (a TOML file; MovieLens 100K and latest-small ship with the project)
says where users, items and interactions come from, which columns hold their ids, and
each feature's kind. That one declaration drives the loader (what is read, validated and
stored), the towers' preprocessing (vocabularies, buckets, tokenisers, built at training
from the data), the manifest (the config travels with every version), the request-time
inputs the app builds from a stored profile, and the metadata `returnMetadata` answers.

The app reads it from the database (what `recsys data load` stored) and the manifest;
the offline job reads files with it. Stored attribute values are plain JSON: strings for
categorical, multi-valued, text and date features (multi-valued ones as the file wrote
them, separator included), numbers for numeric ones, null for missing.
"""

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # interactions.event_type is 32 wide
# Names the pipeline gives meanings of its own: a declared field may not take them.
RESERVED = frozenset(
    {"id", "user_id", "item_id", "history", "history_ratings", "histories", "score",
     "rating", "candidate_probability", "event_type", "occurred_at"}
)  # fmt: skip


class CatalogError(ValueError):
    """A catalog config is missing, not TOML, or not valid; the message says where."""


class Kind(StrEnum):
    categorical = "categorical"  # one value of a set ("F", "engineer")
    multi_categorical = "multi_categorical"  # several, with a separator ("Action|Comedy")
    numeric = "numeric"  # a number, bucketed inside the model
    text = "text"  # words, tokenised inside the model
    date = "date"  # a date or timestamp; the model reads its year


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One user or item column: how it is read, stored, modelled and returned."""

    name: Annotated[str, Field(pattern=NAME.pattern)]
    column: str | None = None  # in the file; default: `name`
    kind: Kind = Kind.categorical
    # False: stored (and returnable as metadata, or in /feature) but not a model input.
    feature: bool = True
    separator: str = "|"  # multi_categorical only
    # Values that mean "none" besides the empty string, e.g. "(no genres listed)".
    missing: list[str] = []
    # Embedding size; default: about 6 * n^0.25 of the vocabulary or buckets (text: 16).
    dim: int | None = Field(default=None, ge=1, le=256)
    # numeric / date: bucket edges (dates: years). Default: quantiles of the training data.
    boundaries: list[float] | None = None
    buckets: int = Field(default=10, ge=2, le=100)  # quantile buckets when no boundaries
    prefix: int | None = Field(default=None, ge=1)  # categorical: only the first N characters
    # A regular expression applied when loading: its first group is what is stored (a
    # year out of "Heat (1995)"); no match stores nothing.
    pattern: str | None = None
    max_tokens: int = Field(default=5000, ge=10)  # text vocabulary size

    @model_validator(mode="after")
    def _check(self) -> "FieldSpec":
        if self.pattern is not None:
            try:
                groups = re.compile(self.pattern).groups
            except re.error as exc:
                raise ValueError(f"pattern: not a regular expression ({exc})") from None
            if groups < 1:
                raise ValueError("pattern: needs a group, (...), for the value to keep")
        edges = self.boundaries
        if edges is not None and any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError("boundaries: must be strictly increasing")
        return self

    @property
    def source(self) -> str:
        return self.column or self.name

    def clean(self, raw: str | None) -> str | None:
        """The stored string of a raw file value (None when missing)."""
        if raw is None:
            return None
        value = raw.strip()
        if value == "" or value in self.missing:
            return None
        if self.pattern is not None:
            found = re.search(self.pattern, value)
            kept = found.group(1) if found else None  # an optional group may match nothing
            return kept.strip() or None if kept else None
        return value

    def values_of(self, stored: Any) -> list[str]:
        """A stored multi-valued field as a list (the form metadata answers with)."""
        if not stored:
            return []
        parts = str(stored).split(self.separator)
        return [p.strip() for p in parts if p.strip() and p.strip() not in self.missing]


def _unique_fields(fields: list[FieldSpec], where: str) -> list[FieldSpec]:
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: field names must be unique, repeated: {', '.join(dupes)}")
    reserved = sorted(set(names) & RESERVED)
    if reserved:
        raise ValueError(f"{where}: reserved field names: {', '.join(reserved)}")
    return fields


class UsersSpec(_Strict):
    """Optional: a catalog without a user file trains on ids and history alone."""

    file: str
    id: str = "user_id"
    fields: list[FieldSpec] = []

    @model_validator(mode="after")
    def _check(self) -> "UsersSpec":
        _unique_fields(self.fields, "users.fields")
        return self


class ItemsSpec(_Strict):
    file: str
    id: str = "item_id"
    fields: list[FieldSpec] = []
    # Fields `returnMetadata=true` adds to each recommended item, in this order.
    metadata: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> "ItemsSpec":
        _unique_fields(self.fields, "items.fields")
        unknown = sorted(set(self.metadata) - {f.name for f in self.fields})
        if unknown:
            raise ValueError(f"items.metadata names undeclared fields: {', '.join(unknown)}")
        return self


class InteractionsSpec(_Strict):
    file: str
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    # unix: seconds since 1970; iso: ISO 8601 (a zone, or UTC); auto: either, per value.
    timestamp_format: Literal["auto", "unix", "iso"] = "auto"
    rating: str | None = None  # column of explicit ratings, if any
    rating_range: tuple[float, float] | None = None  # inclusive; out of range is an error
    event_type: str | None = None  # column naming each event's kind, if any
    # The kinds of event this catalog has (the first is the kind of a row without one).
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE.pattern)]] = ["interaction"]

    @model_validator(mode="after")
    def _check(self) -> "InteractionsSpec":
        if not self.event_types:
            raise ValueError("interactions.event_types: at least one kind of event")
        if self.rating_range and self.rating_range[0] > self.rating_range[1]:
            raise ValueError("interactions.rating_range: low above high")
        return self


class CatalogConfig(_Strict):
    """A data set's declaration (see the module docstring and README, "Your catalog")."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    description: str = ""
    # generic: the files named below, CSV (with a header) or Parquet, by extension.
    # movielens-100k: GroupLens' original u.user / u.item / u.data, read as declared below.
    format: Literal["generic", "movielens-100k"] = "generic"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    # Events of one user in the same second carry no real order. "hashed" orders them by
    # a hash of (user, item), so no file's row order (some are sorted by item) decides
    # which of them is held out; "file" keeps the file's order (only for files whose order
    # within a second is known to be arbitrary).
    same_time_order: Literal["hashed", "file"] = "hashed"
    users: UsersSpec | None = None
    items: ItemsSpec
    interactions: InteractionsSpec

    @model_validator(mode="after")
    def _check(self) -> "CatalogConfig":
        # A (user, item) pair's features are one set of named inputs (the ranker's).
        shared = sorted({f.name for f in self.user_fields} & {f.name for f in self.item_fields})
        if shared:
            raise ValueError(f"user and item fields share names: {', '.join(shared)}")
        return self

    @property
    def user_fields(self) -> list[FieldSpec]:
        return list(self.users.fields) if self.users else []

    @property
    def item_fields(self) -> list[FieldSpec]:
        return list(self.items.fields)

    def user_features(self) -> list[FieldSpec]:
        return [f for f in self.user_fields if f.feature]

    def item_features(self) -> list[FieldSpec]:
        return [f for f in self.item_fields if f.feature]

    def item_field(self, name: str) -> FieldSpec:
        return next(f for f in self.item_fields if f.name == name)

    def metadata_of(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """What `returnMetadata` adds for an item with these stored attributes."""
        out: dict[str, Any] = {}
        for name in self.items.metadata:
            spec, value = self.item_field(name), attributes.get(name)
            out[name] = spec.values_of(value) if spec.kind == Kind.multi_categorical else value
        return out


def read_catalog_config(path: Path) -> CatalogConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalog config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML ({exc})") from None
    return parse_catalog_config(raw, str(path))


def parse_catalog_config(raw: Any, where: str = "catalog config") -> CatalogConfig:
    try:
        return CatalogConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CatalogError(f"{where}: {location}: {first['msg']}") from None
