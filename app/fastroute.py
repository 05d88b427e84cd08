"""A route class for the hot routes: their path and query parameters validated in one
pydantic call, not FastAPI's per-parameter dependency solving.

FastAPI's own handler (`solve_dependencies`) costs the event loop about a fifth of a
/recommendations request at 32 connections (py-spy), most of it Python-level work per
parameter. `OneModelRoute` (FastAPI's documented custom-`APIRoute` hook) builds, once per
route, a pydantic model from the same `Path(...)`/`Query(...)` declarations and validates
all parameters with it in pydantic-core, so the rules, the 422 errors and the OpenAPI
schema stay FastAPI's. Only endpoints whose parameters are single path or query values
(str, int, float, bool, an Enum or a Literal, optional or not; plus `request: Request`),
which are `async def` and annotated to return a `Response` take the fast handler; any
other endpoint (a list parameter read from repeated keys, a body, a header) gets FastAPI's.
"""

import enum
import inspect
import types
from collections.abc import Callable, Coroutine
from typing import Any, Literal, Union, get_args, get_origin

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class OneModelRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        call = self.dependant.call
        if call is None or not _fast(self):
            return super().get_route_handler()
        return _handler(call, _params_model(self), self.dependant.request_param_name)


def _fast(route: APIRoute) -> bool:
    """Only path/query values and the request, and a coroutine that answers a Response
    itself (FastAPI's handler would serialise anything else through the response model)."""
    dependant = route.dependant
    others = (
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
    )
    params = [*dependant.path_params, *dependant.query_params]
    scalars = all(_scalar(param.field_info.annotation) for param in params)
    returns = inspect.signature(route.endpoint).return_annotation
    answers = inspect.isclass(returns) and issubclass(returns, Response)
    return not any(others) and scalars and inspect.iscoroutinefunction(route.endpoint) and answers


def _scalar(annotation: Any) -> bool:
    """One value per key (what `query_params[key]` gives), optional or not."""
    if get_origin(annotation) in (Union, types.UnionType):
        return all(_scalar(arg) for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        return True
    return annotation in (str, int, float, bool) or (
        inspect.isclass(annotation) and issubclass(annotation, enum.Enum)
    )


def _params_model(route: APIRoute) -> tuple[type[BaseModel], dict[str, str]]:
    """A model with one field per path/query parameter (validated by alias, extra query
    values ignored: filters are read from the request) and where each alias comes from."""
    fields: dict[str, Any] = {}
    where: dict[str, str] = {}
    kinds = (("path", route.dependant.path_params), ("query", route.dependant.query_params))
    for kind, params in kinds:
        for param in params:
            fields[param.name] = (param.field_info.annotation, param.field_info)
            where[param.alias] = kind
    config = ConfigDict(extra="ignore", populate_by_name=False)
    model = create_model(f"{route.name}_params", __config__=config, **fields)
    return model, where


def _handler(
    call: Callable[..., Any], spec: tuple[type[BaseModel], dict[str, str]], request_name: str | None
) -> Handler:
    model, where = spec
    names = list(model.model_fields)

    async def handle(request: Request) -> Response:
        raw = {**request.query_params, **request.path_params}
        try:
            values = model.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError(_located(exc, where)) from None
        kwargs = {name: getattr(values, name) for name in names}
        if request_name is not None:
            kwargs[request_name] = request
        response: Response = await call(**kwargs)
        return response

    return handle


def _located(exc: ValidationError, where: dict[str, str]) -> list[dict[str, Any]]:
    """pydantic's errors with FastAPI's locations: ("query", "k"), ("path", "user_id")."""
    errors = []
    for error in exc.errors(include_url=False):
        alias = str(error["loc"][0]) if error["loc"] else ""
        errors.append({**error, "loc": (where.get(alias, "query"), *error["loc"])})
    return errors
