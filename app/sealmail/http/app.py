"""The one factory for the HTTP front ends: a FastAPI application with a front end's routers,
error handlers, static files and middleware mounted, its state at ``app.state.http``.

``sealmail.web.app`` (the admin pages) and ``sealmail.api.app`` (the REST API) each describe
themselves as a ``FrontEnd``; ``build_app`` is the only place an application is put together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from starlette.responses import Response

    from sealmail.http.server import ASGIApp
    from sealmail.http.state import HttpState

# An exception handler: (request, exception) -> response; each takes the exception type it is for.
Handler = Callable[..., Awaitable["Response"]]


@dataclass(frozen=True)
class FrontEnd:
    """What one front end mounts."""

    title: str
    routers: Sequence[APIRouter]
    handlers: Mapping[int | type[Exception], Handler] = field(default_factory=dict)
    static: Path | None = None  # served at /static
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = ()  # innermost first
    # FastAPI's own options: the OpenAPI document's address, version and description (off by default)
    options: Mapping[str, Any] = field(default_factory=dict)


def build_app(state: HttpState, front: FrontEnd) -> ASGIApp:
    """The ASGI application for ``front`` over ``state`` (and so over its ``AppContext``)."""
    options: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None, **front.options}
    app = FastAPI(title=front.title, **options)
    app.state.http = state
    if front.static is not None:
        app.mount("/static", StaticFiles(directory=str(front.static)), name="static")
    for key, handler in front.handlers.items():
        app.add_exception_handler(key, handler)
    for router in front.routers:
        app.include_router(router)
    wrapped: ASGIApp = app
    for middleware in front.middleware:
        wrapped = middleware(wrapped)
    return wrapped
