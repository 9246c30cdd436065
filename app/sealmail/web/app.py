"""The web admin and the users' self-service area (``/account``, ``web.selfservice``):
server-rendered pages (Jinja2) over the shared services.

Every page works without JavaScript; ``static/app.js`` only adds copy buttons. State shared by
requests lives in ``WebState`` (``app.state.http``, ``sealmail.web.state``); all blocking work (config
store, Argon2, DKIM key generation) runs in worker threads. The application itself is put together
by ``sealmail.http.app.build_app``, as the REST API's is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from sealmail.http.app import FrontEnd, build_app
from sealmail.store.errors import StoreUnavailable
from sealmail.web import views, wellknown
from sealmail.web.gate import WebGate
from sealmail.web.state import HERE, LoginRequired, WebState, redirect, render

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.http.server import ASGIApp
    from sealmail.services.dnscheck import Lookup
    from sealmail.web.sessions import SessionStore


async def _login(request: Request, exc: LoginRequired) -> Response:
    return redirect(exc.target)


async def _missing(request: Request, exc: Exception) -> Response:
    if (
        request.url.path.startswith(("/static/", "/.well-known/", "/mail/", "/autodiscover/", "/Autodiscover/"))
        or "session" not in request.state._state
    ):
        return PlainTextResponse("Not found\n", status_code=404)
    return render(request, "message.html", 404, title="Not found", text="There is nothing at this address.")


async def _unavailable(request: Request, exc: Exception) -> Response:
    # Split mode: the data host's store (mailboxes, maybe the config store) is away for now (RFC 9110 §15.6.4).
    text = "The mail store cannot be reached just now. Try again in a moment."
    if "session" not in request.state._state:
        return PlainTextResponse(text + "\n", status_code=503, headers={"Retry-After": "10"})
    response = render(request, "message.html", 503, title="Try again in a moment", text=text)
    response.headers["Retry-After"] = "10"
    return response


def create_app(
    ctx: AppContext,
    *,
    basic_auth: tuple[str, str] | None,
    lookup: Lookup | None = None,
    sessions: SessionStore | None = None,
) -> ASGIApp:
    """The ASGI application (FastAPI wrapped in the gate)."""
    state = WebState(ctx, basic_auth, lookup, sessions)

    def gate(app: ASGIApp) -> ASGIApp:
        return WebGate(app, state)

    front = FrontEnd(
        title="Sealmail web admin",
        routers=[wellknown.router, views.router],
        handlers={LoginRequired: _login, 404: _missing, StoreUnavailable: _unavailable},
        static=HERE / "static",
        middleware=[gate],
    )
    return build_app(state, front)
