"""What the web admin's app and its pages share: per-process state (``WebState``, ``app.state.http``),
the signed-in admin dependency, sessions' flash messages, redirects and template rendering.

``sealmail.web.app`` builds the application from this and the page routers (``views``, ``wellknown``);
the pages import from here, never from ``app``, so the imports run one way. What the REST API
shares with the pages (the state's base, the peer, audit entries) is in ``sealmail.http.state``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from sealmail.config.models import AdminAccount
from sealmail.doctor.run import ReportCache
from sealmail.http.state import HttpState, actor
from sealmail.services import admins
from sealmail.web.sessions import MemorySessions, RedisSessions, Session, SessionStore

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.services.dnscheck import Lookup
    from sealmail.services.eventlog import Actor

HERE = Path(__file__).parent
PENDING_SECONDS = 300  # between the password and the second factor
DELIVERABILITY_KEEP_SECONDS = 600  # the Deliverability page's last report: long enough to read, short enough to be now


class LoginRequired(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


class WebState(HttpState):
    """``HttpState`` with the admin sessions, the first-run basic-auth pair and the templates."""

    def __init__(
        self,
        ctx: AppContext,
        basic_auth: tuple[str, str] | None,
        lookup: Lookup | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        super().__init__(ctx, lookup)
        self.basic_auth = basic_auth
        self.sessions = sessions or (RedisSessions(ctx.redis) if ctx.redis is not None else MemorySessions())
        # The self-service area's sessions: a store of their own (sessions.AREAS).
        self.account_sessions: SessionStore = (
            RedisSessions(ctx.redis, "sealmail:account") if ctx.redis is not None else MemorySessions()
        )
        self.session_ttl = ctx.settings.web_session_seconds
        self.templates = make_templates()
        self.deliverability = ReportCache(DELIVERABILITY_KEEP_SECONDS)
        self._admin_exists = False

    async def admin_exists(self) -> bool:
        # Once there is an admin the gate is gone for good in this process (the answer cannot go back
        # to "none" without someone removing every account, which the admin pages do not offer).
        if not self._admin_exists:
            self._admin_exists = await self.call(admins.has_admin, self.ctx.config)
        return self._admin_exists

    def note_admin_created(self) -> None:
        self._admin_exists = True

    def session_store(self, area: str) -> SessionStore:
        return self.account_sessions if area == "account" else self.sessions


def web(request: Request) -> WebState:
    return cast(WebState, request.app.state.http)


def session(request: Request) -> Session:
    return cast(Session, request.state.session)


def admin_actor(request: Request, admin: AdminAccount) -> Actor:
    """An admin's changes are recorded under their address."""
    return actor(request, "web", admin.email)


def safe_next(target: str | None) -> str:
    """Only local paths: an attacker's link cannot send a freshly signed-in admin elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/admin"


async def current_admin(request: Request) -> AdminAccount:
    """Dependency for every signed-in page."""
    state = web(request)
    if not await state.admin_exists():
        raise LoginRequired("/setup")
    admin_id = session(request).get("admin_id")
    if admin_id:
        found = await state.call(admins.admin_by_id, state.ctx.config, admin_id)
        # A removed account, or a password changed since this session signed in: sign in again.
        if found is not None and session(request).get("auth") == admins.session_stamp(found):
            return found
        session(request).end()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(f"/admin/login?next={target}" if request.method == "GET" else "/admin/login")


# A signed-in page's parameter: ``admin: Admin``.
Admin = Annotated[AdminAccount, Depends(current_admin)]


async def form_fields(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: (v if isinstance(v, str) else "") for k, v in data.items()}


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    messages = list(session(request).get("flash", []))
    messages.append([kind, text])
    session(request)["flash"] = messages[-5:]


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    from sealmail.services.dashboard import human_size

    env.filters["size"] = human_size
    env.filters["when"] = _when
    return templates


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    s = session(request)
    messages = s.pop("flash", []) if s.exists else []
    context.setdefault("admin", None)
    context.update(request=request, csrf=s.csrf_token(), messages=messages, path=request.url.path)
    return web(request).templates.TemplateResponse(request, name, context, status_code=status)
