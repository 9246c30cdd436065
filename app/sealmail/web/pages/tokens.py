"""API tokens: list, create (the secret is shown once), revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import NotFound, SealmailError
from sealmail.services import operations, tokens
from sealmail.web.state import Admin, admin_actor, flash, redirect, render, web

router = APIRouter()


@router.get("/admin/tokens")
async def token_list(request: Request, admin: Admin) -> Response:
    state = web(request)
    found = await state.call(tokens.list_tokens, state.ctx.config)
    return render(request, "tokens.html", admin=admin, tokens=found, scopes=tokens.SCOPES, form={})


@router.post("/admin/tokens")
async def token_create(request: Request, admin: Admin) -> Response:
    state = web(request)
    data = await request.form()
    name = str(data.get("name") or "")
    chosen = [str(s) for s in data.getlist("scopes")]
    try:
        token, secret = await state.call(
            operations.create_token, state.ctx.config, admin_actor(request, admin), name, chosen
        )
    except SealmailError as exc:
        found = await state.call(tokens.list_tokens, state.ctx.config)
        return render(
            request,
            "tokens.html",
            422,
            admin=admin,
            tokens=found,
            scopes=tokens.SCOPES,
            error=str(exc),
            form={"name": name, "scopes": chosen},
        )
    return render(request, "token_created.html", admin=admin, token=token, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str, admin: Admin) -> Response:
    state = web(request)
    try:
        token = await state.call(operations.revoke_token, state.ctx.config, admin_actor(request, admin), token_id)
    except NotFound:
        return redirect("/admin/tokens")
    flash(request, f"Revoked {token.name}.")
    return redirect("/admin/tokens")
