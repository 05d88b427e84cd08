"""The /recommendations answer built as JSON bytes (app.answer) against the API contract:
byte for byte the pydantic schema's own dump of the same answer, and valid against it;
each item's stored catalog fields checked once, a malformed row refused."""

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from app.answer import ListAnswer
from app.schemas import RecommendationsResponse
from app.version import ItemMetadata
from tests.versions import bare_version

LINES = [
    {"title": "Toy Story (1995)", "genres": ["Animation", "Children's"], "year": 1995},
    {"title": "Amélie — «Le Fabuleux Destin»", "genres": [], "rating": 4.25, "new": True},
    {"title": 'quote " and \\ backslash', "url": None, "ratio": 1e-7, "big": 12345678901},
    {},
    {"title": "😀 emoji", "released": False, "score_of_critics": -3.0},
]
BLOB = b"".join(orjson.dumps(line) + b"\n" for line in LINES)
VERSION = bare_version(
    item_ids=np.array(["1", "2", "x/3", "4", "é5"], dtype=object),
    metadata=ItemMetadata(BLOB),
    version="20261205T000000Z-abc",
)
SCORES = [0.1234567891, 3.0, -0.5, 1e-7, 12.000001]


def both(rows: list[int], with_metadata: bool, **envelope) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """(the fast path's bytes, the schema's dump of the same answer)."""
    scores = [SCORES[row] for row in rows]
    fast = ListAnswer(
        items=[VERSION.item_json(r, s, with_metadata) for r, s in zip(rows, scores, strict=True)],
        **envelope,
    ).json()
    entries = [VERSION.entry(r, s, with_metadata) for r, s in zip(rows, scores, strict=True)]
    model = RecommendationsResponse(items=entries, **envelope)
    return fast, model.model_dump_json(exclude_none=True).encode()


ENVELOPES = [
    {"user_id": "42", "model_version": "v1", "ranked_by": "ranking", "fallback": False},
    {"user_id": "u", "model_version": "v", "ranked_by": "retrieval", "fallback": False,
     "fallback_reason": "no_history"},
    {"user_id": "ü 7", "model_version": "v", "ranked_by": "popularity", "fallback": True,
     "fallback_reason": "database_unavailable", "shortfall": "only 2 items match"},
]  # fmt: skip


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("with_metadata", [True, False])
@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4], [4, 2], [3], []])
def test_bytes_equal_the_schemas_dump(rows: list[int], with_metadata: bool, envelope) -> None:  # type: ignore[no-untyped-def]
    fast, schema = both(rows, with_metadata, **envelope)
    assert fast == schema
    parsed = RecommendationsResponse.model_validate_json(fast)
    assert [item.id for item in parsed.items] == VERSION.item_ids[rows].tolist()
    if with_metadata and rows:
        assert parsed.items[0].model_extra == {k: v for k, v in LINES[rows[0]].items()}


def test_an_items_metadata_is_validated_once_then_used_as_stored() -> None:
    metadata = ItemMetadata(BLOB)
    assert not metadata._checked.any()
    first = metadata.members(1)
    assert metadata._checked.tolist() == [False, True, False, False, False]
    assert metadata.members(1) == first and orjson.loads(b"{%s}" % first) == LINES[1]
    assert metadata.members(3) == b""  # an item without fields: nothing to splice
    # A null field is left out, as the schema's dump leaves it out (exclude_none).
    assert orjson.loads(b"{%s}" % metadata.members(2)) == {
        k: v for k, v in LINES[2].items() if v is not None
    }


@pytest.mark.parametrize(
    "line",
    [b'["not", "an", "object"]', b'{"nested": {"a": 1}}', b'{"id": "7"}', b'{"score": 1}',
     b'{"title": "cut', b'{"list": [1, 2]}'],
)  # fmt: skip
def test_a_malformed_row_is_refused_not_spliced(line: bytes) -> None:
    metadata = ItemMetadata(line + b"\n")
    with pytest.raises((ValidationError, ValueError)):
        metadata.members(0)
    assert not metadata._checked.any()  # refused again next time, never served
