"""How routes reach the process's runtime objects.

A plain function of the request, not a FastAPI dependency: the hot routes take
`request: Request` (which FastAPI passes without solving anything) and call this,
saving each request the dependency machinery's work.
"""

from fastapi import Request

from app.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
