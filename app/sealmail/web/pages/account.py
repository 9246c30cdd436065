"""The signed-in admin's own account: password, two-factor authentication, recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import SealmailError
from sealmail.http.state import audit
from sealmail.services import admins
from sealmail.services.credentials import AuthenticationFailed
from sealmail.web.state import Admin, admin_actor, flash, form_fields, redirect, render, session, web

router = APIRouter()


@router.get("/admin/account")
async def account(request: Request, admin: Admin) -> Response:
    return render(request, "account.html", admin=admin)


@router.post("/admin/account/password")
async def account_password(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        changed = await state.call(
            admins.change_password,
            state.ctx.config,
            state.settings,
            admin.id,
            fields.get("current", ""),
            fields.get("password", ""),
            fields.get("confirm", ""),
        )
    except SealmailError as exc:
        return render(request, "account.html", 422, admin=admin, password_error=str(exc))
    session(request).rotate()
    session(request)["auth"] = admins.session_stamp(changed)  # this session goes on; the others end
    await audit(request, admin_actor(request, admin), "admin.password")
    flash(request, "Password changed.")
    return redirect("/admin/account")


@router.post("/admin/account/totp")
async def totp_start(request: Request, admin: Admin) -> Response:
    if admin.totp_secret:
        return redirect("/admin/account")
    session(request)["totp_setup"] = admins.new_totp_secret()
    return redirect("/admin/account/totp")


def _totp_page(
    request: Request, admin: AdminAccount, secret: str, status: int = 200, error: str | None = None
) -> Response:
    import segno
    from markupsafe import Markup

    uri = admins.totp_uri(secret, admin.email)
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR code"))  # noqa: S704 - segno's own SVG
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(request, "totp_setup.html", status, admin=admin, secret=grouped, uri=uri, qr=qr, error=error)


@router.get("/admin/account/totp")
async def totp_setup(request: Request, admin: Admin) -> Response:
    secret = session(request).get("totp_setup")
    if admin.totp_secret or not secret:
        return redirect("/admin/account")
    return _totp_page(request, admin, secret)


@router.post("/admin/account/totp/confirm")
async def totp_confirm(request: Request, admin: Admin) -> Response:
    state = web(request)
    secret = session(request).get("totp_setup")
    if not secret:
        return redirect("/admin/account")
    fields = await form_fields(request)
    try:
        codes = await state.call(admins.enable_totp, state.ctx.config, admin.id, secret, fields.get("code", ""))
    except SealmailError as exc:
        return _totp_page(request, admin, secret, 422, str(exc))
    session(request).pop("totp_setup")
    session(request).rotate()
    await audit(request, admin_actor(request, admin), "admin.totp-enable")
    return render(request, "recovery_codes.html", admin=admin, codes=codes, first=True)


@router.post("/admin/account/totp/disable")
async def totp_disable(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        await state.call(admins.check_second_factor, state.ctx.config, admin.id, fields.get("code", ""))
    except AuthenticationFailed:
        return render(request, "account.html", 422, admin=admin, totp_error="That code is wrong.")
    await state.call(admins.disable_totp, state.ctx.config, admin.id)
    await audit(request, admin_actor(request, admin), "admin.totp-disable")
    flash(request, "Two-factor authentication is off.", "warning")
    return redirect("/admin/account")


@router.post("/admin/account/recovery-codes")
async def recovery_codes(request: Request, admin: Admin) -> Response:
    state = web(request)
    try:
        codes = await state.call(admins.regenerate_recovery_codes, state.ctx.config, admin.id)
    except SealmailError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/account")
    await audit(request, admin_actor(request, admin), "admin.recovery-codes")
    return render(request, "recovery_codes.html", admin=admin, codes=codes, first=False)
