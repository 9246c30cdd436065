"""``/v1/me``: what a user does for their own address with a token they made in the self-service
area (``services.selfservice``, the same operations as the web's ``/account``).

The token stands for one alias and is good for nothing else (``api.auth``: an administrator's
scope is refused, and these routes refuse an administrator's token). What needs the mailbox keys
takes the password in the body, checked with the same lockout as every sign-in; the keys are
never kept between requests. The export and the backup copy are zip archives sent while they are
made (``http.downloads``). ``/v1/me/sieve`` reads and writes the filters and vacation reply the
account page edits (``services.sieverules``): as rules, or as the Sieve text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sealmail.api.auth import ApiError, OwnToken, token_actor
from sealmail.api.problems import PROBLEM_RESPONSES, problem
from sealmail.api.schemas import (
    BackupOut,
    ExportIn,
    MeOut,
    OwnPasswordIn,
    PasswordCheckIn,
    QuotaOut,
    RecoveryKeyOut,
    SieveCheckIn,
    SieveCheckOut,
    SieveErrorOut,
    SieveIn,
    SieveOut,
)
from sealmail.backup.errors import BackupError
from sealmail.http.downloads import Download, in_thread
from sealmail.http.state import peer, state_of
from sealmail.net.limits import Refused
from sealmail.services import selfservice, sieverules, takeout
from sealmail.services.credentials import AuthenticationFailed
from sealmail.sieve import rules as sieve_rules
from sealmail.sieve.errors import SieveError

if TYPE_CHECKING:
    from sealmail.backup.mailboxcopy import BackupCopy
    from sealmail.config.models import ApiToken
    from sealmail.net.limits import Attempt
    from sealmail.services import credentials
    from sealmail.services.eventlog import Actor

router = APIRouter(prefix="/v1/me", tags=["your own address"], responses=PROBLEM_RESPONSES)
ZIP = {200: {"content": {"application/zip": {}}, "description": "a zip archive, sent while it is made"}}


async def _me(request: Request, token: ApiToken) -> selfservice.Member:
    state = state_of(request)
    assert token.alias_id is not None  # api.auth lets only a user's own token through
    found = await state.call(selfservice.member, state.ctx.config, token.alias_id)
    if found is None:  # removed, disabled or without its mailbox since the token was made
        raise ApiError(problem(403, "this token's address cannot be used any more"))
    return found


def _actor(request: Request, token: ApiToken, me: selfservice.Member) -> Actor:
    found = token_actor(request, token)
    return type(found)(found.component, f"{found.name} of {me.address}", found.peer)


async def _attempt(request: Request, me: selfservice.Member) -> Attempt:
    attempt = await state_of(request).ctx.limiter.reserve(peer(request), me.login)
    if isinstance(attempt, Refused):
        detail = (
            "too many sign-ins in progress for this address; try again in a moment"
            if attempt.busy
            else "too many failed attempts for this address; wait 15 minutes"
        )
        raise ApiError(problem(429, detail))
    return attempt


async def _unlock(request: Request, me: selfservice.Member, password: str) -> credentials.Unlocked:
    """The mailbox keys from the password in the body: a wrong one is a failed sign-in (lockout)."""
    state = state_of(request)
    attempt = await _attempt(request, me)
    try:
        unlocked = await state.ctx.logins.unlock(state.ctx.config, me.login, password)
    except AuthenticationFailed:
        await attempt.failed()
        raise ApiError(problem(403, "the password is wrong")) from None
    except BaseException:
        await attempt.cancel()
        raise
    await attempt.succeeded()
    return unlocked


def _quota(usage: selfservice.Usage) -> QuotaOut:
    return QuotaOut(
        used_bytes=usage.used, stored_bytes=usage.stored, waiting_bytes=usage.waiting, limit_bytes=usage.limit
    )


@router.get("", summary="Your address, its quota and what is set up")
async def me(request: Request, token: OwnToken) -> MeOut:
    state = state_of(request)
    who = await _me(request, token)
    usage = await state.call(selfservice.usage, state.ctx.config, state.settings, state.ctx.mailstore, who)
    return MeOut(
        alias_id=who.alias.id,
        address=who.address,
        quota=_quota(usage),
        two_factor=who.two_factor,
        recovery_key=who.credential.recovery_salt is not None,
    )


@router.get("/quota", summary="Used and allowed octets")
async def quota(request: Request, token: OwnToken) -> QuotaOut:
    state = state_of(request)
    who = await _me(request, token)
    return _quota(await state.call(selfservice.usage, state.ctx.config, state.settings, state.ctx.mailstore, who))


@router.post(
    "/password",
    status_code=204,
    summary="Change your password",
    description="The mailbox keys are wrapped again with the new password (the mail stays as it is); every "
    "session signed in with the old one ends, on every protocol, and every token this address's user made is "
    "revoked, the one making this request included. A wrong current password counts as a failed sign-in of "
    "the address.",
)
async def change_password(request: Request, body: OwnPasswordIn, token: OwnToken) -> Response:
    state = state_of(request)
    who = await _me(request, token)
    attempt = await _attempt(request, who)
    try:
        await state.call(
            selfservice.change_password,
            state.ctx.config,
            state.settings,
            who,
            body.current_password,
            body.new_password,
            None,
            _actor(request, token, who),
        )
    except AuthenticationFailed:
        await attempt.failed()
        raise ApiError(problem(403, "the current password is wrong")) from None
    except BaseException:
        await attempt.cancel()
        raise
    await attempt.succeeded()
    return Response(status_code=204)


@router.post(
    "/recovery-key",
    summary="Make or replace the recovery key (returned once)",
    description="With it an administrator can set a new password without emptying the mailbox. A new key "
    "replaces the previous one, which stops working.",
)
async def recovery_key(request: Request, body: PasswordCheckIn, token: OwnToken) -> JSONResponse:
    state = state_of(request)
    who = await _me(request, token)
    unlocked = await _unlock(request, who, body.password)
    made = await state.call(selfservice.new_recovery_key, state.ctx.config, unlocked, _actor(request, token, who))
    return JSONResponse(RecoveryKeyOut(recovery_key=made).model_dump(), headers={"Cache-Control": "no-store"})


@router.post(
    "/export",
    summary="Export every folder (a zip, sent while it is made)",
    description="mbox: one mbox file per folder (mboxrd; read, answered, flagged and draft marks in Status and "
    "X-Status); eml: each message exactly as stored, in a directory per folder. The mailbox is decrypted with "
    "the password for this request only; nothing is written to the server's disk.",
    response_class=Response,
    responses=ZIP,  # type: ignore[arg-type]
)
async def export(request: Request, body: ExportIn, token: OwnToken) -> Response:
    state = state_of(request)
    who = await _me(request, token)
    unlocked = await _unlock(request, who, body.password)
    opened = await selfservice.open_mailbox(state.ctx.config, state.settings, state.ctx.mailstore, unlocked)
    try:
        await state.call(
            selfservice.export_started, state.ctx.config, unlocked, body.format, _actor(request, token, who)
        )
    except BaseException:
        await opened.close()
        raise
    name = f"{who.address}-{datetime.now(UTC):%Y-%m-%d}-{body.format}.zip"
    return Download(takeout.mailbox_zip(opened.mailbox, body.format), name, closing=opened.close)


async def _latest(request: Request, who: selfservice.Member) -> BackupCopy:
    state = state_of(request)
    try:
        copy = await state.call(selfservice.latest_backup, state.settings, who)
    except BackupError as exc:
        raise ApiError(problem(503, str(exc))) from None
    if copy is None:
        raise ApiError(problem(404, "there is no backup of this mailbox yet"))
    return copy


@router.get("/backup", summary="The latest encrypted backup of your mailbox")
async def backup(request: Request, token: OwnToken) -> BackupOut:
    copy = await _latest(request, await _me(request, token))
    return BackupOut(run=copy.run, taken_at=copy.taken_at, size_bytes=copy.size)


@router.get(
    "/backup/download",
    summary="Download it (a zip, with keys.json and open-mailbox.py to open it with the password)",
    response_class=Response,
    responses=ZIP,  # type: ignore[arg-type]
)
async def backup_download(request: Request, token: OwnToken) -> Response:
    state = state_of(request)
    who = await _me(request, token)
    copy = await _latest(request, who)
    archive = await state.call(
        selfservice.backup_archive, state.ctx.config, state.settings, who, copy, _actor(request, token, who)
    )
    return Download(in_thread(archive), f"{who.address}-backup-{copy.taken_at:%Y-%m-%d}.zip")


# ---- filters and vacation reply, as rules or as Sieve ----------------------------------------------------
SIEVE_PROBLEMS: dict[int | str, dict[str, object]] = {
    409: {"description": "another script is active (``active_script``); say ``activate`` true or false"},
    422: {"description": "the rules are invalid, or the script is not valid Sieve (``line`` names where)"},
}


def _sieve_out(found: sieverules.View) -> SieveOut:
    error = found.last_error
    return SieveOut(
        name=sieverules.SCRIPT,
        exists=found.script is not None,
        active=found.active == sieverules.SCRIPT,
        active_script=found.active,
        rules=found.reading.rules,
        note=found.reading.note or None,
        script=found.text,
        last_error=SieveErrorOut(time=error.time, detail=error.detail) if error else None,
    )


def _one_of(rules: sieve_rules.Rules | None, script: str | None) -> str:
    if (rules is None) == (script is None):
        raise ApiError(problem(422, "give exactly one of rules and script", title="Invalid input"))
    return sieve_rules.to_sieve(rules) if rules is not None else (script or "").replace("\r\n", "\n")


def _sieve_problem(exc: SieveError) -> ApiError:
    return ApiError(problem(422, f"line {exc.line}: {exc.message}", title="Invalid Sieve script", line=exc.line))


@router.get("/sieve", summary="Your filters and vacation reply: the rules, and the Sieve script they are kept in")
async def sieve_get(request: Request, token: OwnToken) -> SieveOut:
    state = state_of(request)
    who = await _me(request, token)
    return _sieve_out(await state.call(sieverules.view, state.ctx.config, who))


@router.put(
    "/sieve",
    summary="Save the rules, or the Sieve text (the script named sealmail)",
    description="The script is compiled first (a script that is not valid Sieve is refused with the line). "
    "Rules are written as Sieve with a marker comment, so a later GET returns them; a script given as text is "
    "returned with rules null. When a script from a mail program (ManageSieve) is active, say with activate "
    "whether this one replaces it as the active script.",
    responses=SIEVE_PROBLEMS,
)
async def sieve_put(request: Request, body: SieveIn, token: OwnToken) -> SieveOut:
    state = state_of(request)
    who = await _me(request, token)
    text = _one_of(body.rules, body.script)
    try:
        await state.call(
            sieverules.save_text,
            state.ctx.config,
            who,
            text,
            _actor(request, token, who),
            activate=body.activate,
            how="rules" if body.rules is not None else "text",
        )
    except SieveError as exc:
        raise _sieve_problem(exc) from None
    except sieverules.OtherScriptActive as exc:
        raise ApiError(problem(409, str(exc), active_script=exc.name)) from None
    return _sieve_out(await state.call(sieverules.view, state.ctx.config, who))


@router.post(
    "/sieve/check",
    summary="Check rules or a Sieve text without storing anything",
    responses={422: SIEVE_PROBLEMS[422]},
)
async def sieve_check(request: Request, body: SieveCheckIn, token: OwnToken) -> SieveCheckOut:
    state = state_of(request)
    await _me(request, token)
    text = _one_of(body.rules, body.script)
    try:
        warnings = await state.call(sieverules.check, text)
    except SieveError as exc:
        raise _sieve_problem(exc) from None
    return SieveCheckOut(script=text, warnings=warnings)
