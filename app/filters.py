"""Business filters: which index rows a request may be answered with.

A version carries, for each categorical item field of its catalog, every value and the
rows holding it (`filters.json`, written at export). A request names values per field
(`?genres=Comedy&genres=Drama`): a row is allowed when it holds one of the named values
of every named field (OR within a field, AND across fields).
"""

import json
from functools import reduce
from pathlib import Path

import numpy as np


class ItemFilters:
    def __init__(self, index: dict[str, dict[str, np.ndarray]]):
        self._index = index

    @classmethod
    def read(cls, path: Path) -> "ItemFilters":
        raw = json.loads(path.read_text())
        return cls(
            {
                field: {value: np.asarray(rows, dtype=np.int64) for value, rows in values.items()}
                for field, values in raw.items()
            }
        )

    @property
    def fields(self) -> list[str]:
        return list(self._index)

    def values(self) -> dict[str, list[str]]:
        return {field: sorted(values) for field, values in self._index.items()}

    def allowed(self, wanted: dict[str, list[str]]) -> np.ndarray | None:
        """Sorted rows passing every named field (None: no filter named). A value the
        catalog does not hold selects nothing."""
        if not wanted:
            return None
        per_field = []
        for field, values in wanted.items():
            found = [self._index[field].get(v, np.empty(0, np.int64)) for v in values]
            per_field.append(np.unique(np.concatenate([np.empty(0, np.int64), *found])))
        return reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), per_field)
