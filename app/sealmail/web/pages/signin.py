"""The first-run wizard (the first admin account, the first domain) and signing in, with the
second factor (RFC 6238) and the per-address lockout.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import AlreadyExists, InvalidInput, SealmailError
from sealmail.http.state import audit, peer
from sealmail.net.limits import Refused
from sealmail.services import admins
from sealmail.services.credentials import AuthenticationFailed
from sealmail.web.pages.domains import add_domain
from sealmail.web.state import (
    PENDING_SECONDS,
    Admin,
    admin_actor,
    flash,
    form_fields,
    redirect,
    render,
    safe_next,
    session,
    web,
)

router = APIRouter()
LOCKED_OUT = "Too many failed attempts. Wait 15 minutes, then try again."
BUSY = "Too many sign-ins in progress for this account. Try again in a moment."


def _refusal(refused: Refused) -> str:
    return BUSY if refused.busy else LOCKED_OUT


@router.get("/")
async def home(request: Request) -> Response:
    return redirect("/admin" if await web(request).admin_exists() else "/setup")


@router.get("/setup")
async def setup(request: Request) -> Response:
    if await web(request).admin_exists():
        return redirect("/admin/login")
    return render(request, "setup_admin.html", step=1, form={})


@router.post("/setup")
async def setup_create(request: Request) -> Response:
    state = web(request)
    if await state.admin_exists():
        return redirect("/admin/login")
    fields = await form_fields(request)
    try:
        admin = await state.call(
            admins.create_admin,
            state.ctx.config,
            state.settings,
            fields.get("email", ""),
            fields.get("password", ""),
            confirm=fields.get("confirm", ""),
            first=True,
        )
    except (InvalidInput, AlreadyExists) as exc:
        return render(request, "setup_admin.html", 422, step=1, error=str(exc), form={"email": fields.get("email")})
    state.note_admin_created()
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    await audit(request, admin_actor(request, admin), "admin.create", detail="first-run wizard")
    return redirect("/setup/domain")


@router.get("/setup/domain")
async def setup_domain(request: Request, admin: Admin) -> Response:
    return render(request, "setup_domain.html", admin=admin, step=2, form={})


@router.post("/setup/domain")
async def setup_domain_add(request: Request, admin: Admin) -> Response:
    fields = await form_fields(request)
    try:
        domain = await add_domain(request, admin, fields.get("name", ""))
    except SealmailError as exc:
        return render(request, "setup_domain.html", 422, admin=admin, step=2, error=str(exc), form=fields)
    return redirect(f"/admin/domains/{domain}/dns?setup=1")


def _sign_in(request: Request, admin: AdminAccount) -> None:
    s = session(request)
    s.rotate()  # a new id once privileged: a planted or stolen pre-login id is worthless (session fixation)
    s.pop("pending_admin_id")
    s.pop("pending_at")
    s["admin_id"] = admin.id
    s["auth"] = admins.session_stamp(admin)  # other sessions end when the password changes
    s["signed_in_at"] = int(time.time())


@router.get("/admin/login")
async def login(request: Request, next: str = "/admin") -> Response:
    if not await web(request).admin_exists():
        return redirect("/setup")
    return render(request, "login.html", next=safe_next(next), form={})


@router.post("/admin/login")
async def login_submit(request: Request) -> Response:
    state = web(request)
    fields = await form_fields(request)
    email, password, target = fields.get("email", "").strip(), fields.get("password", ""), safe_next(fields.get("next"))
    ip = peer(request)
    limiter = state.ctx.limiter
    attempt = await limiter.reserve(ip, email)
    if isinstance(attempt, Refused):
        return render(request, "login.html", 429, error=_refusal(attempt), next=target, form={"email": email})
    try:
        admin = await state.call(admins.authenticate, state.ctx.config, state.settings, email, password)
    except AuthenticationFailed:
        await attempt.failed()
        return render(
            request, "login.html", 401, error="Wrong email address or password.", next=target, form={"email": email}
        )
    s = session(request)
    if admin.totp_secret:
        # The password was right: refund this slot, but keep the account's failures (the second
        # factor is counted on the same account; a right password must not reset its guesses).
        await attempt.cancel()
        s.rotate()
        s["pending_admin_id"] = admin.id
        s["pending_at"] = int(time.time())
        s["pending_next"] = target
        return redirect("/admin/login/2fa")
    await attempt.succeeded()
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    return redirect(target)


async def _pending(request: Request) -> AdminAccount | None:
    s = session(request)
    admin_id, started = s.get("pending_admin_id"), s.get("pending_at", 0)
    if not admin_id or time.time() - started > PENDING_SECONDS:
        return None
    state = web(request)
    return await state.call(admins.admin_by_id, state.ctx.config, admin_id)


@router.get("/admin/login/2fa")
async def second_factor(request: Request) -> Response:
    if await _pending(request) is None:
        return redirect("/admin/login")
    return render(request, "login_2fa.html")


@router.post("/admin/login/2fa")
async def second_factor_submit(request: Request) -> Response:
    state = web(request)
    admin = await _pending(request)
    if admin is None:
        flash(request, "That took too long; sign in again.", "error")
        return redirect("/admin/login")
    fields = await form_fields(request)
    ip, limiter = peer(request), state.ctx.limiter
    attempt = await limiter.reserve(ip, admin.email)
    if isinstance(attempt, Refused):
        return render(request, "login_2fa.html", 429, error=_refusal(attempt))
    try:
        factor = await state.call(admins.check_second_factor, state.ctx.config, admin.id, fields.get("code", ""))
        if factor.step is not None and not await state.sessions.first_use(f"totp:{admin.id}:{factor.step}", 120):
            raise AuthenticationFailed()  # RFC 6238 §5.2: a code is accepted once
    except AuthenticationFailed:
        await attempt.failed()
        return render(request, "login_2fa.html", 401, error="That code is wrong or was used already.")
    await attempt.succeeded()
    target = safe_next(session(request).pop("pending_next"))
    _sign_in(request, admin)
    await state.call(admins.record_login, state.ctx.config, admin)
    if factor.method == "recovery":
        flash(request, f"You used a recovery code; {factor.remaining_codes} are left.", "warning")
    return redirect(target)


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    session(request).end()
    return redirect("/admin/login")
