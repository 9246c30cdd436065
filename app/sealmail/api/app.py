"""The REST API: ``/v1`` over the shared services, documented at ``/v1/openapi.json``.

Authentication: ``Authorization: Bearer sm_…`` (RFC 6750, ``sealmail.api.auth``); each operation
needs one scope. Errors are RFC 9457 problem details. Every write is recorded in the audit log with
the token's name. The routes are in ``sealmail.api.routes``; the application is put together by
``sealmail.http.app.build_app``, as the web admin's is.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealmail.api import own
from sealmail.api.auth import ApiError
from sealmail.api.problems import problem
from sealmail.api.routes import router
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, SealmailError
from sealmail.http.app import FrontEnd, build_app
from sealmail.http.state import HttpState
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.http.server import ASGIApp
    from sealmail.services.dnscheck import Lookup

API_VERSION = "1.0.0"


def _pointer(loc: tuple[Any, ...]) -> dict[str, str]:
    where, *path = loc or ("body",)
    if where == "body":
        return {"pointer": "#/" + "/".join(str(p) for p in path)}
    return {where if where in ("query", "header", "path") else "location": ".".join(str(p) for p in path)}


async def _api_error(request: Request, exc: ApiError) -> Response:
    return exc.response


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = [
        {"detail": e.get("msg", "invalid").removeprefix("Value error, "), **_pointer(tuple(e.get("loc", ())))}
        for e in exc.errors()
    ]
    summary = "; ".join(
        f"{next(iter(v for k, v in e.items() if k != 'detail'), '')}: {e['detail']}".lstrip(": ") for e in errors
    )
    return problem(422, summary or "invalid request", title="Invalid input", errors=errors)


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else ""
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _service(request: Request, exc: SealmailError) -> Response:
    if isinstance(exc, NotFound):
        return problem(404, str(exc))
    if isinstance(exc, AlreadyExists):
        return problem(409, str(exc))
    if isinstance(exc, InvalidInput):
        return problem(422, str(exc), title="Invalid input")
    if isinstance(exc, StoreUnavailable):  # split mode: the data host's store is away (RFC 9110 §15.6.4)
        return problem(503, str(exc), headers={"Retry-After": "10"})
    return problem(400, str(exc))


def create_app(ctx: AppContext, *, lookup: Lookup | None = None) -> ASGIApp:
    from sealmail.services.tokens import SCOPES

    scopes = "\n".join(f"- `{s}`: {what}" for s, what in SCOPES.items())
    front = FrontEnd(
        title="Sealmail API",
        routers=[router, own.router],
        handlers={
            ApiError: _api_error,
            RequestValidationError: _invalid,
            StarletteHTTPException: _http,
            SealmailError: _service,
        },
        options={
            "version": API_VERSION,
            "description": "Domains, aliases, passwords, API tokens and the delivery/error/audit logs of a Sealmail "
            f"server. Authenticate with `Authorization: Bearer <token>`. Scopes:\n\n{scopes}\n\n"
            "A token a user makes for their own address in the self-service area (`/account/tokens`) is good "
            "for `/v1/me` only: that address's quota, password, recovery key, filters and vacation reply, export and backup.\n\n"
            "Errors are RFC 9457 problem details (`application/problem+json`).",
            # the interactive docs load scripts from a CDN; the document itself is enough
            "openapi_url": "/v1/openapi.json",
        },
    )
    return build_app(HttpState(ctx, lookup), front)
