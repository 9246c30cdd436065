"""Deliverability: the report of ``sealmail doctor`` (``sealmail.doctor``) on a page, problems first,
each with its fix. A run starts from the button (the checks ask DNS and connect out: seconds, not
something to do on every page view); its report is kept for a few minutes in this process, and
one run serves the clicks that overlap it. The checks await DNS and sockets and put their blocking
parts on threads, so the event loop keeps serving every other request meanwhile."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.doctor.run import diagnose
from sealmail.web.state import DELIVERABILITY_KEEP_SECONDS, Admin, redirect, render, web

router = APIRouter()
LABELS = {"problem": "Problem", "warning": "Warning", "ok": "OK"}


@router.get("/admin/deliverability")
async def deliverability(request: Request, admin: Admin) -> Response:
    report = web(request).deliverability.latest()
    return render(
        request,
        "deliverability.html",
        admin=admin,
        report=report,
        labels=LABELS,
        keep_minutes=DELIVERABILITY_KEEP_SECONDS // 60,
    )


@router.post("/admin/deliverability")
async def run_checks(request: Request, admin: Admin) -> Response:
    state = web(request)
    await state.deliverability.refresh(lambda: diagnose(state.settings, state.ctx.config))
    return redirect("/admin/deliverability")
