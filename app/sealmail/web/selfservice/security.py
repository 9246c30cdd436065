"""Password and security: change the password (the mailbox keys are wrapped again, the mailbox
itself stays as it is), make or replace the recovery key (shown once), two-factor authentication
on (a QR code or ``otpauth://`` URI and a code) and off (a code).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import InvalidInput, SealmailError
from sealmail.http.state import peer
from sealmail.net.limits import Refused
from sealmail.services import selfservice, totp
from sealmail.services.credentials import AuthenticationFailed
from sealmail.web.selfservice.rooms import (
    Me,
    PasswordRefused,
    member_actor,
    open_from_session,
    refusal,
    render_me,
    seal_in_session,
    unlock_again,
)
from sealmail.web.state import flash, form_fields, redirect, session, web

router = APIRouter()


def _page(request: Request, me: selfservice.Member, status: int = 200, **errors: str) -> Response:
    return render_me(request, "self/security.html", status, me=me, **errors)


@router.get("/account/security")
async def security(request: Request, me: Me) -> Response:
    return _page(request, me)


@router.post("/account/password")
async def change_password(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    attempt = await state.ctx.limiter.reserve(peer(request), me.login)
    if isinstance(attempt, Refused):
        return _page(request, me, 429, change_error=refusal(attempt))
    try:
        await state.call(
            selfservice.change_password,
            state.ctx.config,
            state.settings,
            me,
            fields.get("current", ""),
            fields.get("password", ""),
            fields.get("confirm", ""),
            member_actor(request, me),
        )
    except AuthenticationFailed:
        await attempt.failed()
        return _page(request, me, 401, change_error="The current password is wrong.")
    except SealmailError as exc:
        await attempt.cancel()
        return _page(request, me, 422, change_error=str(exc).capitalize() + ".")
    await attempt.succeeded()
    changed = await state.call(selfservice.member, state.ctx.config, me.alias.id)
    s = session(request)
    s.rotate()
    if changed is not None:
        s["auth"] = selfservice.session_stamp(changed.credential)  # this session goes on; the others end
    flash(
        request, "Password changed. Your mail programs need the new password now; any API tokens you made are revoked."
    )
    return redirect("/account/security")


@router.post("/account/recovery-key")
async def recovery_key(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        unlocked = await unlock_again(request, me, fields.get("password", ""))
        made = await state.call(selfservice.new_recovery_key, state.ctx.config, unlocked, member_actor(request, me))
    except PasswordRefused as exc:
        return _page(request, me, exc.status, recovery_error=exc.message)
    replaced = me.credential.recovery_salt is not None
    return render_me(request, "self/recovery_key.html", me=me, key=made, replaced=replaced)


# ---- two-factor authentication ------------------------------------------------------------------------
@router.post("/account/totp")
async def totp_start(request: Request, me: Me) -> Response:
    if me.two_factor:
        return redirect("/account/security")
    seal_in_session(session(request), "totp_setup", totp.new_secret())
    return redirect("/account/totp")


def _totp_page(
    request: Request, me: selfservice.Member, secret: str, status: int = 200, error: str | None = None
) -> Response:
    import segno
    from markupsafe import Markup

    uri = totp.uri(secret, me.address)
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR code"))  # noqa: S704 - segno's own SVG
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_me(request, "self/totp_setup.html", status, me=me, secret=grouped, uri=uri, qr=qr, error=error)


@router.get("/account/totp")
async def totp_setup(request: Request, me: Me) -> Response:
    secret = open_from_session(session(request), "totp_setup")
    if me.two_factor or not secret:
        return redirect("/account/security")
    return _totp_page(request, me, secret)


@router.post("/account/totp/confirm")
async def totp_confirm(request: Request, me: Me) -> Response:
    state = web(request)
    secret = open_from_session(session(request), "totp_setup")
    if not secret:
        return redirect("/account/security")
    fields = await form_fields(request)
    try:
        unlocked = await unlock_again(request, me, fields.get("password", ""))
        await state.call(
            selfservice.enable_totp,
            state.ctx.config,
            unlocked,
            secret,
            fields.get("code", ""),
            member_actor(request, me),
        )
    except PasswordRefused as exc:
        return _totp_page(request, me, secret, exc.status, exc.message)
    except SealmailError as exc:
        return _totp_page(request, me, secret, 422, str(exc).capitalize() + ".")
    session(request).pop("totp_setup")
    flash(request, "Two-factor authentication is on: signing in here asks for a code from now on.")
    return redirect("/account/security")


@router.post("/account/totp/disable")
async def totp_disable(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    code = fields.get("code", "")
    try:
        unlocked = await unlock_again(request, me, fields.get("password", ""))
        step = await state.call(selfservice.check_code, unlocked, code)
        if not await state.account_sessions.first_use(f"totp:{me.alias.id}:{step}", 120):
            raise AuthenticationFailed()  # RFC 6238 §5.2: a code is accepted once
        await state.call(selfservice.disable_totp, state.ctx.config, unlocked, code, member_actor(request, me))
    except PasswordRefused as exc:
        return _page(request, me, exc.status, totp_error=exc.message)
    except (AuthenticationFailed, InvalidInput):
        return _page(request, me, 422, totp_error="That code is wrong.")
    flash(request, "Two-factor authentication is off.", "warning")
    return redirect("/account/security")
