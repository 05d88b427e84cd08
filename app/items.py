"""Item routes: catalog fields of items, items like an item, and the filterable fields."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from app import similar as service
from app.deps import runtime_of
from app.fastroute import OneModelRoute
from app.routes import ERRORS, Exclude, json, selection_of
from app.schemas import ErrorResponse, ItemsResponse, SimilarItemsResponse

router = APIRouter(route_class=OneModelRoute)
ItemId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$", description="Item id."),
]


@router.get(
    "/items/{item_id}/similar",
    response_model=SimilarItemsResponse,
    response_model_exclude_none=True,
    responses={**ERRORS, 404: {"model": ErrorResponse}},
)
async def similar(
    item_id: ItemId,
    request: Request,
    k: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
    return_metadata: Annotated[
        bool, Query(alias="returnMetadata", description="Add the catalog's metadata fields.")
    ] = False,
    exclude: Exclude = "",
) -> Response:
    """Items like this one (closest candidate embeddings), itself left out; the same
    business filters as /recommendations."""
    body = await service.similar_items(
        runtime=runtime_of(request),
        item_id=item_id,
        k=k,
        with_metadata=return_metadata,
        selection=selection_of(request, exclude),
    )
    return json(body)


@router.get("/items", response_model=ItemsResponse, responses=ERRORS)
async def items(
    request: Request,
    ids: Annotated[
        str, Query(min_length=1, max_length=500, description="Item ids, comma-separated.")
    ],
) -> Response:
    """Each known item with its catalog fields (what a page shows beside an id)."""
    return json(service.items_by_id(runtime=runtime_of(request), item_ids=[ids]))


@router.get("/filters", response_model=dict[str, list[str]])
async def filters(request: Request) -> Response:
    """The business filters /recommendations and /items/{item_id}/similar take: each
    categorical item field of the catalog and its values."""
    values = service.filter_values(runtime=runtime_of(request))
    return Response(orjson.dumps(values), media_type="application/json")
