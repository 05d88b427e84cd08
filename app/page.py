"""The page (app/static: plain HTML and JavaScript, served by the app itself, no CDN)
and what only it needs: a few user ids to pick from and the live version's curves."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from app.db.engine import read_retrying
from app.db.tables import users
from app.deps import runtime_of
from app.errors import NotFoundError
from app.manifest import CURVES
from app.routes import ERRORS, json
from app.schemas import ErrorResponse, UsersResponse

STATIC = Path(__file__).with_name("static")
router = APIRouter()


def mount_page(app) -> None:  # type: ignore[no-untyped-def]
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")


@router.get("/", include_in_schema=False)
async def home() -> Response:
    return RedirectResponse("/ui/")


@router.get("/users", response_model=UsersResponse, responses=ERRORS)
async def some_users(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="How many ids.")] = 20,
) -> Response:
    """A few user ids (in id order), for a page to offer; not a listing API."""
    runtime = runtime_of(request)
    query = select(users.c.id).order_by(users.c.id).limit(limit)

    async def read() -> list[str]:
        async def fetch(conn) -> list[str]:  # type: ignore[no-untyped-def]
            return [row[0] for row in await conn.execute(query)]

        return await read_retrying(runtime.engine, fetch)

    return json(UsersResponse(users=await runtime.guard.run(read)))


@router.get(
    "/model/curves.png",
    response_class=FileResponse,
    responses={404: {"model": ErrorResponse}, 200: {"content": {"image/png": {}}}},
)
async def curves(request: Request) -> Response:
    """The live version's training curves (loss and validation metrics per epoch)."""
    registry = runtime_of(request).registry
    path = registry.artifacts_dir / registry.live / CURVES
    if not path.is_file():
        raise NotFoundError(f"version {registry.live} was exported without training curves")
    return FileResponse(path, media_type="image/png")
