"""A loaded model version: everything a request needs, held in memory, read-only.

A version is built completely by the loader (app/artifacts.py) before anything can see it;
requests then only read it, so a swap is replacing one reference.
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from pydantic import TypeAdapter

from app.filters import ItemFilters
from app.manifest import Manifest
from app.schemas import FieldValue


@dataclass(frozen=True)
class Ranking:
    """The second stage with everything item-side computed at export.

    score(user, item) = user's `ranking` vector . `item_vectors[item]`
                        + rating_blend * (rating(user, item) - rating_mean)
    The rating head (`rating_fn` over the user's and the item's halves) is the only part
    that crosses user and item; it runs only when `rating_blend` is not zero.
    """

    candidates: int  # retrieved items ranked per request (at least k)
    item_vectors: np.ndarray  # [items, ranking_dim], rows in index order
    rating_blend: float = 0.0
    rating_mean: float = 0.0
    rating_fn: Any = None
    rating_items: np.ndarray | None = None  # [items, item_dim], only with a blend


class ItemMetadata:
    """The API's catalog fields per index row, kept as the JSON-lines file's own bytes
    (a million items cost their file size, not a million dicts)."""

    def __init__(self, blob: bytes):
        self._blob = blob
        ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == ord("\n"))
        self._starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        self._ends = ends.astype(np.int64)
        self._checked = np.zeros(len(ends), dtype=bool)  # rows `members` has validated
        self._without_nulls: dict[int, bytes] = {}  # checked rows that had null fields

    def __len__(self) -> int:
        return len(self._ends)

    def _line(self, row: int) -> bytes:
        return self._blob[int(self._starts[row]) : int(self._ends[row])].strip()

    def get(self, row: int) -> dict[str, Any]:
        return orjson.loads(self._line(row))  # type: ignore[no-any-return]

    def members(self, row: int) -> bytes:
        """The row's fields as JSON object members (`"title":"...","year":1995`), ready
        to splice into an answered item; null fields left out, as answers always did.
        The first time a row is answered its line is checked against the API's field
        types (a JSON object of `FieldValue`s, no key of the item's own); afterwards its
        bytes are used as stored (re-encoded once, and kept, where it had nulls)."""
        if not self._checked[row]:
            self._check(row)
        kept = self._without_nulls.get(row)
        return kept if kept is not None else self._line(row)[1:-1].strip()

    def _check(self, row: int) -> None:
        line = self._line(row)
        fields = METADATA_FIELDS.validate_json(line)  # ValidationError: a bad file
        if not line.startswith(b"{") or fields.keys() & {"id", "score"}:
            raise ValueError(f"item metadata row {row}: not an object of catalog fields")
        if None in fields.values():
            present = {name: value for name, value in fields.items() if value is not None}
            self._without_nulls[row] = orjson.dumps(present)[1:-1]
        self._checked[row] = True


METADATA_FIELDS = TypeAdapter(dict[str, FieldValue])


@dataclass(frozen=True)
class ModelVersion:
    version: str
    manifest: Manifest
    query_fn: Any  # the query-side serving signature (app.signatures.Signature)
    searcher: Any  # scann_ops_pybind.ScannSearcher over the item embeddings
    item_ids: np.ndarray  # index row -> item id (str)
    popular: list[dict[str, Any]]
    inputs: dict[str, str]  # serving signature input name -> dtype
    history_feature: str
    history_length: int
    history_pad: str
    leaves: int  # ScaNN partitions; searching all of them is exhaustive
    reorder: int  # candidates ScaNN re-scores exactly; never ask for fewer
    reorder_multiplier: float = 1.0  # ... nor fewer than this many per requested result
    # A brute-force index: scored exactly with numpy over `item_embeddings` instead.
    exact: bool = False
    # Ratings parallel to the history (NaN where none); None for versions without it.
    history_ratings_feature: str | None = None
    user_id_feature: str = "user_id"
    ranking: Ranking | None = None  # None: retrieval order is the answer
    metadata: ItemMetadata | None = None
    row_of: dict[str, int] = field(default_factory=dict)  # item id -> index row
    # [items, dim] the vectors the index holds (similar items, exact filtered search).
    item_embeddings: np.ndarray | None = None
    filters: ItemFilters | None = None  # None: exported before business filters
    search_threads: int = 1  # threads a batched ScaNN search splits its queries over
    # Partitions a search opens, as the export tuned it; None: the searcher's own default.
    leaves_to_search: int | None = None

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def rows_each(self, id_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Index rows of each list's ids in one lookup pass for a whole batch; ids not in
        the index are dropped, repeats kept (the search masks them either way)."""
        if not id_lists:
            return []
        lengths = [len(ids) for ids in id_lists]
        found = np.fromiter(
            map(self.row_of.get, itertools.chain.from_iterable(id_lists), itertools.repeat(-1)),
            dtype=np.int64,
            count=sum(lengths),
        )
        return [part[part >= 0] for part in np.split(found, np.cumsum(lengths)[:-1])]

    def item_json(self, row: int, score: float, with_metadata: bool) -> orjson.Fragment:
        """`entry` as JSON bytes: the same members in the same order, its catalog fields
        spliced in from the version's metadata as stored (checked once per row)."""
        item = orjson.dumps({"id": self.item_ids[row], "score": round(score, 6)})
        if with_metadata and self.metadata is not None:
            members = self.metadata.members(row)
            if members:
                item = b"%s,%s}" % (item[:-1], members)
        return orjson.Fragment(item)

    def entry(self, row: int, score: float, with_metadata: bool) -> dict[str, Any]:
        """One answered item: its id and score, and its catalog metadata when asked."""
        item = {"id": self.item_ids[row], "score": round(score, 6)}
        if with_metadata and self.metadata is not None:
            item.update(self.metadata.get(row))
        return item

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        """Index rows of the given ids, sorted and unique; ids not in the index are skipped."""
        return np.unique(self.rows_each([list(item_ids)])[0])
