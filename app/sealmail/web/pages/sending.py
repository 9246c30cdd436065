"""Sending: the aliases at their hourly submission limits (``services.sendlimits``) with their counts
and when they may send again, the aliases an administrator blocked, and the switch that blocks or
allows an alias."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import NotFound, SealmailError
from sealmail.services import aliases, operations, sendlimits
from sealmail.web.state import Admin, admin_actor, flash, form_fields, redirect, render, web

router = APIRouter()


@router.get("/admin/sending")
async def sending(request: Request, admin: Admin) -> Response:
    state = web(request)
    rows = await sendlimits.listing(state.ctx.config, state.ctx.redis, state.settings, state.call)
    limits = sendlimits.HourlyLimits.from_settings(state.settings)
    # Without Redis each submission process counts in its own memory: the page says it cannot see that.
    shared = state.ctx.redis is not None
    return render(request, "sending.html", admin=admin, limits=limits, rows=rows, shared=shared)


async def _switch(request: Request, alias_id: str, admin: Admin, blocked: bool) -> Response:
    state = web(request)
    try:
        alias = await state.call(state.ctx.config.get_alias, alias_id)
    except NotFound:
        return render(request, "message.html", 404, admin=admin, title="Not found", text="No such alias.")
    await state.call(operations.set_sending, state.ctx.config, admin_actor(request, admin), alias, blocked)
    address = await state.call(aliases.alias_address, state.ctx.config, alias)
    flash(request, f"{address} may {'no longer' if blocked else 'again'} send mail.")
    return redirect("/admin/sending")


@router.post("/admin/sending/block")
async def block_address(request: Request, admin: Admin) -> Response:
    state = web(request)
    address = (await form_fields(request)).get("address", "").strip()
    try:
        alias = await state.call(aliases.get_alias, state.ctx.config, address)
    except SealmailError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/sending")
    return await _switch(request, alias.id, admin, True)


@router.post("/admin/sending/{alias_id}/block")
async def block(request: Request, alias_id: str, admin: Admin) -> Response:
    return await _switch(request, alias_id, admin, True)


@router.post("/admin/sending/{alias_id}/allow")
async def allow(request: Request, alias_id: str, admin: Admin) -> Response:
    return await _switch(request, alias_id, admin, False)
