"""The web admin: server-rendered pages (Jinja2) over the shared services.

Every page works without JavaScript; ``static/app.js`` only adds copy buttons. State shared by
requests lives in ``WebState`` (``app.state.web``, ``sealmail.web.state``); all blocking work (config
store, Argon2, DKIM key generation) runs in worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from sealmail.web import views, wellknown
from sealmail.web.gate import WebGate
from sealmail.web.state import HERE, LoginRequired, WebState, make_templates, redirect, render

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.services.dnscheck import Lookup
    from sealmail.web.sessions import SessionStore


def create_app(
    ctx: AppContext,
    *,
    basic_auth: tuple[str, str] | None,
    lookup: Lookup | None = None,
    sessions: SessionStore | None = None,
) -> Any:
    """The ASGI application (FastAPI wrapped in the gate)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="Sealmail web admin")
    state = WebState(ctx, basic_auth, lookup, sessions)
    app.state.web = state
    app.state.templates = make_templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return redirect(exc.target)

    @app.exception_handler(404)
    async def _missing(request: Request, exc: Exception) -> Response:
        if (
            request.url.path.startswith(("/static/", "/.well-known/", "/mail/", "/autodiscover/", "/Autodiscover/"))
            or "session" not in request.state._state
        ):
            return PlainTextResponse("Not found\n", status_code=404)
        return render(request, "message.html", 404, title="Not found", text="There is nothing at this address.")

    app.include_router(wellknown.router)
    app.include_router(views.router)
    return WebGate(app, state)
