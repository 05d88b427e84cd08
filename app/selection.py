"""What a request leaves out or keeps: `exclude` (item ids) and business filters (values
of the catalog's categorical item fields, `?genres=Comedy`), shared by every list the
API answers (personalised, popular fallback, similar items)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.version import ModelVersion


class UnknownFilter(ValueError):
    """A filter on a field the version cannot filter on (an older export)."""


@dataclass(frozen=True)
class Selection:
    exclude: tuple[str, ...] = ()
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def allowed(self, version: ModelVersion) -> np.ndarray | None:
        """Sorted index rows the filters allow (None: no filter)."""
        if not self.filters:
            return None
        if version.filters is None:
            raise UnknownFilter(f"model version {version.version} was exported without filters")
        return version.filters.allowed({k: list(v) for k, v in self.filters.items()})

    def keeps(self, version: ModelVersion, row: int, allowed: np.ndarray | None) -> bool:
        """For lists built in Python (the popular fallback): is this row answerable?"""
        if allowed is not None and not _contains(allowed, row):
            return False
        return version.item_ids[row] not in self.exclude


NO_SELECTION = Selection()


def selection_from(
    params: Mapping[str, Sequence[str]], exclude: Sequence[str], fields: Sequence[str]
) -> Selection:
    """A Selection from query values (repeated or comma-separated), keeping only the
    parameters named after a filterable field."""
    return Selection(
        exclude=tuple(_split(exclude)),
        filters={name: _split(params[name]) for name in fields if params.get(name)},
    )


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _contains(sorted_rows: np.ndarray, row: int) -> bool:
    at = int(np.searchsorted(sorted_rows, row))
    return at < len(sorted_rows) and int(sorted_rows[at]) == row


def shortfall(answered: int, k: int, selection: Selection) -> str | None:
    """Why a list is shorter than asked for, or None when it is not."""
    if answered >= k:
        return None
    reason = "exclusions and seen items"
    if selection.filters:
        reason = "filters, " + reason
    return f"only {answered} items remain after {reason}; {k} asked for"
