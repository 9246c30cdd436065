"""The delivery log (``/admin/emails``) and the error and audit logs (``/admin/logs``), with filters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.config.models import AdminAccount
from sealmail.errors import SealmailError
from sealmail.services import eventlog
from sealmail.services.eventlog import LogFilters
from sealmail.web.state import Admin, render, web

if TYPE_CHECKING:
    from sealmail.config.models import LogKind

router = APIRouter()


async def _log_page(request: Request, admin: AdminAccount, kind: LogKind, template: str, **filters: str) -> Response:
    state = web(request)
    error = None
    page = None
    try:
        page = await state.call(eventlog.read, state.ctx.config, kind, LogFilters.from_text(filters))
    except SealmailError as exc:
        error = str(exc)
    query = {k: v for k, v in filters.items() if v and k != "cursor"}
    return render(
        request,
        template,
        200 if error is None else 422,
        admin=admin,
        kind=kind,
        entries=page.entries if page else [],
        next_cursor=page.next_cursor if page else None,
        filters=filters,
        query=query,
        error=error,
    )


@router.get("/admin/emails")
async def emails(
    request: Request,
    admin: Admin,
    direction: str = "outbound",
    status: str = "",
    domain: str = "",
    address: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    if direction == "all":
        direction = ""
    filters = {
        "direction": direction,
        "status": status,
        "domain": domain,
        "address": address,
        "since": since,
        "until": until,
        "cursor": cursor,
    }
    return await _log_page(request, admin, "delivery", "emails.html", **filters)


@router.get("/admin/logs")
async def error_logs(
    request: Request,
    admin: Admin,
    kind: str = "error",
    status: str = "",
    domain: str = "",
    address: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    chosen: LogKind = "audit" if kind == "audit" else "error"
    filters = {"status": status, "domain": domain, "address": address, "since": since, "until": until, "cursor": cursor}
    return await _log_page(request, admin, chosen, "logs.html", **filters)
