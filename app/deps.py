"""Typed dependencies: routes receive the process's runtime objects through these."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.artifacts import ModelVersion
from app.retrieval import QueryBatcher
from app.settings import Settings


@dataclass
class Runtime:
    """What the lifespan builds once: swapped as a whole, never mutated piecemeal."""

    settings: Settings
    engine: AsyncEngine
    batcher: QueryBatcher
    version: ModelVersion


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
