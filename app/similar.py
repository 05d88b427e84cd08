"""Item pages: an item's catalog fields, and items like it ("more like this").

Similar items come from the candidate embeddings the index holds: the item's own vector
is searched (micro-batched on the model thread like user requests), the item itself and
any exclusions left out, the business filters applied as for users.
"""

from collections.abc import Sequence

from app.errors import NotFoundError
from app.runtime import Runtime
from app.schemas import ItemsResponse, SimilarItemsResponse
from app.selection import NO_SELECTION, Selection, shortfall
from app.serving import SimilarRequest


async def similar_items(
    *,
    runtime: Runtime,
    item_id: str,
    k: int,
    with_metadata: bool,
    selection: Selection = NO_SELECTION,
) -> SimilarItemsResponse:
    version = runtime.registry.assignment.live
    row = version.row_of.get(item_id)
    if row is None:
        raise NotFoundError(f"item {item_id!r} not found")
    request = SimilarRequest(row, k, selection.exclude, selection.allowed(version))
    ranked = await runtime.similar.submit((version, request))
    items = ranked.entries(version, with_metadata)
    return SimilarItemsResponse(
        item_id=item_id,
        items=items,  # type: ignore[arg-type]
        model_version=version.version,
        shortfall=shortfall(len(items), k, selection),
    )


def items_by_id(*, runtime: Runtime, item_ids: Sequence[str]) -> ItemsResponse:
    """Catalog fields of each known id (from memory: the live version's metadata)."""
    version = runtime.registry.assignment.live
    wanted = [part.strip() for value in item_ids for part in value.split(",") if part.strip()]
    known = [(i, version.row_of.get(i)) for i in dict.fromkeys(wanted)]
    return ItemsResponse(
        items=[version.entry(row, 0.0, True) for _, row in known if row is not None],  # type: ignore[misc]
        unknown=[i for i, row in known if row is None],
    )


def filter_values(*, runtime: Runtime) -> dict[str, list[str]]:
    """Every filterable field of the live version and its values."""
    filters = runtime.registry.assignment.live.filters
    return filters.values() if filters is not None else {}
