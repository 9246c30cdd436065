"""The dashboard: mailbox usage, thirty days of traffic and of spam filtering, the health of the components."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.web.state import Admin, render, web

router = APIRouter()


@router.get("/admin")
async def dashboard(request: Request, admin: Admin) -> Response:
    from sealmail.services import dashboard as board
    from sealmail.services.status import collect
    from sealmail.web.charts import legend, spam_legend, spam_svg, traffic_svg

    state = web(request)
    store = state.ctx.config
    usage = await state.call(board.mailbox_usage, store, state.settings)
    days = await state.call(board.traffic, store, 30)
    status = await state.call(collect, store, state.settings)
    spam = await state.call(board.spam_stats, store, 30)
    totals = {name: sum(d.counts[name] for d in days) for name in board.SERIES}
    return render(
        request,
        "dashboard.html",
        admin=admin,
        usage=usage,
        days=days,
        totals=totals,
        chart=traffic_svg(days),
        legend=legend(),
        health=status,
        spam=spam,
        spam_chart=spam_svg(spam.days),
        spam_legend=spam_legend(),
        spam_on=state.settings.rspamd_url is not None,
    )
