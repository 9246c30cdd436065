"""The user's own API tokens: good for ``/v1/me`` of this alias only (password, recovery key, filters and vacation,
quota, export, backup), never for an administrator's operation or another alias."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import NotFound, SealmailError
from sealmail.services import selfservice
from sealmail.web.selfservice.rooms import Me, member_actor, render_me
from sealmail.web.state import flash, form_fields, redirect, web

router = APIRouter()


async def _page(request: Request, me: selfservice.Member, status: int = 200, **context: object) -> Response:
    state = web(request)
    found = await state.call(selfservice.list_tokens, state.ctx.config, me)
    context.setdefault("form", {})
    return render_me(request, "self/tokens.html", status, me=me, tokens=found, **context)


@router.get("/account/tokens")
async def token_list(request: Request, me: Me) -> Response:
    return await _page(request, me)


@router.post("/account/tokens")
async def token_create(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    try:
        made, secret = await state.call(
            selfservice.create_token, state.ctx.config, me, fields.get("name", ""), member_actor(request, me)
        )
    except SealmailError as exc:
        return await _page(request, me, 422, error=str(exc).capitalize() + ".", form=fields)
    return render_me(request, "self/token_created.html", me=me, token=made, secret=secret)


@router.post("/account/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str, me: Me) -> Response:
    state = web(request)
    try:
        revoked = await state.call(selfservice.revoke_token, state.ctx.config, me, token_id, member_actor(request, me))
    except NotFound:
        return redirect("/account/tokens")
    flash(request, f"Revoked {revoked.name}.")
    return redirect("/account/tokens")
