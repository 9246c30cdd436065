"""Take your mail with you: the export (every folder as mbox files or .eml files in a zip, made
from the mailbox while it is sent, with the password asked for again) and the mailbox's latest
encrypted backup with the way to open it (``backup.mailboxcopy``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.backup.errors import BackupError
from sealmail.http.downloads import Download, in_thread
from sealmail.services import selfservice, takeout
from sealmail.store.errors import StoreUnavailable
from sealmail.web.selfservice.rooms import Me, PasswordRefused, member_actor, render_me, unlock_again
from sealmail.web.state import form_fields, web

router = APIRouter()
UNAVAILABLE = "Your mailbox cannot be reached just now; try again in a moment."


async def _page(request: Request, me: selfservice.Member, status: int = 200, **context: object) -> Response:
    state = web(request)
    backup, backup_problem = None, None
    try:
        backup = await state.call(selfservice.latest_backup, state.settings, me)
    except BackupError as exc:
        backup_problem = str(exc)
    context.setdefault("form", {"format": "mbox"})
    return render_me(
        request,
        "self/takeout.html",
        status,
        me=me,
        backup=backup,
        backup_problem=backup_problem,
        formats=takeout.FORMATS,
        **context,
    )


@router.get("/account/takeout")
async def takeout_page(request: Request, me: Me) -> Response:
    return await _page(request, me)


def export_filename(me: selfservice.Member, fmt: str) -> str:
    return f"{me.address}-{datetime.now(UTC):%Y-%m-%d}-{fmt}.zip"


@router.post("/account/takeout/export")
async def export(request: Request, me: Me) -> Response:
    state = web(request)
    fields = await form_fields(request)
    fmt = fields.get("format", "mbox")
    if fmt not in takeout.FORMATS:
        return await _page(request, me, 422, export_error="Choose mbox or .eml.", form=fields)
    try:
        unlocked = await unlock_again(request, me, fields.get("password", ""))
        opened = await selfservice.open_mailbox(state.ctx.config, state.settings, state.ctx.mailstore, unlocked)
    except PasswordRefused as exc:
        return await _page(request, me, exc.status, export_error=exc.message, form={"format": fmt})
    except StoreUnavailable:
        return await _page(request, me, 503, export_error=UNAVAILABLE, form={"format": fmt})
    try:
        await state.call(selfservice.export_started, state.ctx.config, unlocked, fmt, member_actor(request, me))
    except BaseException:
        await opened.close()
        raise
    chunks = takeout.mailbox_zip(opened.mailbox, fmt)
    return Download(chunks, export_filename(me, fmt), closing=opened.close)


@router.get("/account/takeout/backup")
async def backup_download(request: Request, me: Me) -> Response:
    state = web(request)
    try:
        copy = await state.call(selfservice.latest_backup, state.settings, me)
    except BackupError as exc:
        return render_me(request, "message.html", 503, me=me, title="No backup to download", text=str(exc))
    if copy is None:
        text = "There is no backup of your mailbox yet: the server makes them on a schedule. Try again later."
        return render_me(request, "message.html", 404, me=me, title="No backup yet", text=text)
    actor = member_actor(request, me)
    archive = await state.call(selfservice.backup_archive, state.ctx.config, state.settings, me, copy, actor)
    name = f"{me.address}-backup-{copy.taken_at:%Y-%m-%d}.zip"
    return Download(in_thread(archive), name)
