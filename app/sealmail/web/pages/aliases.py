"""Aliases: list and search, create, edit, remove, generate or reset a password, turn off a user's
two-factor authentication (they lost the app), Apple profile."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import NotFound, SealmailError
from sealmail.services import aliases, credentials, domains, operations, selfservice
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.operations import AliasFields
from sealmail.web.state import Admin, admin_actor, flash, form_fields, redirect, render, web

if TYPE_CHECKING:
    from sealmail.config.models import Alias

router = APIRouter()


def _alias_form(alias: Alias | None) -> dict[str, Any]:
    if alias is None:
        return {"storage": True, "enabled": True, "disabled_reply": "reject", "recipients": "", "quota": ""}
    from sealmail.services.dashboard import human_size

    return {
        "recipients": "\n".join(alias.recipients),
        "storage": alias.storage,
        "enabled": alias.enabled,
        "disabled_reply": alias.disabled_reply,
        "quota": human_size(alias.quota).replace(" ", "").replace("iB", "").replace(".0", "") if alias.quota else "",
        "description": alias.description,
    }


def _parse_alias_fields(fields: dict[str, str]) -> AliasFields:
    return AliasFields(
        recipients=[line for line in fields.get("recipients", "").replace(",", "\n").splitlines() if line.strip()],
        storage=fields.get("storage") == "on",
        enabled=fields.get("enabled") == "on",
        disabled_reply=fields.get("disabled_reply", "reject"),
        quota=aliases.parse_quota(fields.get("quota", "").strip() or None),
        description=fields.get("description", ""),
    )


@router.get("/admin/aliases")
async def alias_list(request: Request, admin: Admin, q: str = "", domain: str = "") -> Response:
    state = web(request)
    store = state.ctx.config
    try:
        found = await state.call(aliases.search_aliases, store, q, domain or None)
    except SealmailError as exc:
        found = []
        flash(request, str(exc), "error")
    rows = []
    for alias in found:
        rows.append((alias, await state.call(aliases.describe_alias, store, alias)))
    all_domains = await state.call(domains.list_domains, store)
    return render(request, "aliases.html", admin=admin, rows=rows, q=q, domain=domain, domains=all_domains)


@router.get("/admin/aliases/new")
async def alias_new(request: Request, admin: Admin, domain: str = "") -> Response:
    state = web(request)
    all_domains = await state.call(domains.list_domains, state.ctx.config)
    return render(
        request,
        "alias_form.html",
        admin=admin,
        alias=None,
        form={**_alias_form(None), "address": f"@{domain}" if domain else ""},
        domains=all_domains,
        replies=aliases.DISABLED_REPLIES,
    )


@router.post("/admin/aliases")
async def alias_create(request: Request, admin: Admin) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        values = _parse_alias_fields(fields)
        who = admin_actor(request, admin)
        alias = await state.call(
            operations.create_alias, state.ctx.config, state.settings, who, fields.get("address", ""), values
        )
    except SealmailError as exc:
        all_domains = await state.call(domains.list_domains, state.ctx.config)
        form = {**fields, "storage": fields.get("storage") == "on", "enabled": fields.get("enabled") == "on"}
        return render(
            request,
            "alias_form.html",
            422,
            admin=admin,
            alias=None,
            form=form,
            domains=all_domains,
            replies=aliases.DISABLED_REPLIES,
            error=str(exc),
        )
    flash(request, "Alias created." + (" Generate its password below." if alias.storage else ""))
    return redirect(f"/admin/aliases/{alias.id}")


async def _alias_or_none(request: Request, alias_id: str) -> Alias | None:
    state = web(request)
    try:
        alias: Alias = await state.call(state.ctx.config.get_alias, alias_id)
    except NotFound:
        return None
    return alias


async def _edit_page(request: Request, admin: AdminAccount, alias: Alias, status: int = 200, **extra: Any) -> Response:
    state = web(request)
    store = state.ctx.config
    info = await state.call(aliases.describe_alias, store, alias)
    credential = await state.call(store.get_credential, alias.id)
    extra.setdefault("form", _alias_form(alias))
    return render(
        request,
        "alias_form.html",
        status,
        admin=admin,
        alias=alias,
        info=info,
        has_keys=bool(credential and credential.has_keys),
        has_recovery=bool(credential and credential.recovery_salt),
        two_factor=bool(credential and credential.totp_secret),
        usage=credential.usage_bytes if credential else None,
        quota=credentials.quota_of(alias, state.settings),
        replies=aliases.DISABLED_REPLIES,
        **extra,
    )


@router.get("/admin/aliases/{alias_id}")
async def alias_edit(request: Request, alias_id: str, admin: Admin) -> Response:
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    return await _edit_page(request, admin, alias)


@router.get("/admin/aliases/{alias_id}/apple.mobileconfig")
async def alias_apple_profile(request: Request, alias_id: str, admin: Admin) -> Response:
    """An Apple configuration profile (mail, calendars, contacts) for an alias with a mailbox; no
    password inside. A signed-in admin only (the Admin dependency), read-only, so a plain GET."""
    from sealmail.services.clientconfig import apple_profile

    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None or alias.kind != "exact" or not alias.storage:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such mailbox.")
    shown = await state.call(aliases.alias_address, state.ctx.config, alias)
    body = apple_profile(state.settings, shown, aliases.own_address(alias))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", aliases.own_address(alias)).strip("_") or "mail"
    return Response(
        body,
        media_type="application/x-apple-aspen-config",
        headers={"content-disposition": f'attachment; filename="{name}.mobileconfig"'},
    )


@router.post("/admin/aliases/{alias_id}")
async def alias_update(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    fields = await form_fields(request)
    try:
        values = _parse_alias_fields(fields)
        who = admin_actor(request, admin)
        await state.call(
            operations.update_alias,
            state.ctx.config,
            state.settings,
            who,
            alias,
            values,
            clear_quota=values.quota is None,
        )
    except SealmailError as exc:
        form = {**fields, "storage": fields.get("storage") == "on", "enabled": fields.get("enabled") == "on"}
        return await _edit_page(request, admin, alias, 422, error=str(exc), form=form)
    flash(request, "Saved.")
    return redirect(f"/admin/aliases/{alias_id}")


@router.post("/admin/aliases/{alias_id}/delete")
async def alias_delete(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is not None:
        who = admin_actor(request, admin)
        await state.call(operations.remove_alias, state.ctx.config, state.settings, who, alias)
        flash(request, f"Removed {await state.call(aliases.alias_address, state.ctx.config, alias)}.")
    return redirect("/admin/aliases")


@router.post("/admin/aliases/{alias_id}/password")
async def alias_password(request: Request, alias_id: str, admin: Admin) -> Response:
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    fields = await form_fields(request)
    try:
        made = await state.call(
            operations.new_password,
            state.ctx.config,
            state.settings,
            admin_actor(request, admin),
            alias,
            current_password=fields.get("current_password") or None,
            recovery_key=fields.get("recovery_key") or None,
            reset_mailbox=fields.get("reset_mailbox") == "on",
        )
    except AuthenticationFailed:
        return await _edit_page(
            request,
            admin,
            alias,
            422,
            password_error="The current password or recovery key is wrong.",  # noqa: S106 - a message
        )
    except SealmailError as exc:
        return await _edit_page(request, admin, alias, 422, password_error=str(exc))
    return render(
        request,
        "alias_password.html",
        admin=admin,
        alias=alias,
        address=made.address,
        password=made.password,
        client=made.client,
    )


@router.post("/admin/aliases/{alias_id}/two-factor-off")
async def alias_two_factor_off(request: Request, alias_id: str, admin: Admin) -> Response:
    """The user lost their authenticator app: their password alone signs in to the account pages
    again. Asked to confirm, as a user who did not ask for it loses their second factor."""
    state = web(request)
    alias = await _alias_or_none(request, alias_id)
    if alias is None:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    fields = await form_fields(request)
    if fields.get("confirm") != "yes":
        error = "Tick the box to confirm that the user asked for it."
        return await _edit_page(request, admin, alias, 422, two_factor_error=error)
    who = admin_actor(request, admin)
    shown = await state.call(selfservice.turn_off_two_factor, state.ctx.config, aliases.own_address(alias), who)
    flash(request, f"Two-factor authentication is off for {shown}: the password alone signs in to the account pages.")
    return redirect(f"/admin/aliases/{alias_id}")
