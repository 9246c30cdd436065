"""The area's first page: which address is signed in, how full the mailbox is, what is set up."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.services import selfservice
from sealmail.store.errors import StoreUnavailable
from sealmail.web.selfservice.rooms import Me, render_me
from sealmail.web.state import web

router = APIRouter()


@router.get("/account/")
async def overview(request: Request, me: Me) -> Response:
    state = web(request)
    try:
        usage = await state.call(selfservice.usage, state.ctx.config, state.settings, state.ctx.mailstore, me)
    except StoreUnavailable:
        usage = None
    return render_me(request, "self/overview.html", me=me, usage=usage)
