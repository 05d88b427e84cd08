"""The benchmark's reference route: what a bare FastAPI route costs on this machine.

A fixed 10-item list in the recommendations' shape, through FastAPI's default response
handling, with no database and no model. Mounted only when `serving.reference_route` is
on (`recsys bench serve` turns it on), so production apps do not expose it.
"""

from fastapi import APIRouter

router = APIRouter()
_ITEMS = [{"id": str(i), "score": round(1.0 - i / 100, 2)} for i in range(1, 11)]


@router.get("/bench/reference", include_in_schema=False)
async def reference() -> dict:
    return {"items": _ITEMS}
