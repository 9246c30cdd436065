"""Signing in to the self-service area: the alias's address and password, then a code from the
authenticator app when the alias turned two-factor authentication on (RFC 6238), with the same
per-address and per-IP lockout as the admin pages and IMAP (``net.limits``: the same counters).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealmail.errors import SealmailError
from sealmail.http.state import peer
from sealmail.net.limits import Refused
from sealmail.services import selfservice, totp
from sealmail.services.credentials import AuthenticationFailed
from sealmail.store.errors import StoreUnavailable
from sealmail.web.selfservice.rooms import (
    open_from_session,
    refusal,
    render_me,
    safe_next,
    seal_in_session,
)
from sealmail.web.state import PENDING_SECONDS, flash, form_fields, redirect, session, web

router = APIRouter()
WRONG = "Wrong address or password."


@router.get("/account")
async def area(request: Request) -> Response:
    return redirect("/account/")


@router.get("/account/login")
async def login(request: Request, next: str = "/account/") -> Response:
    return render_me(request, "self/login.html", next=safe_next(next), form={})


def _sign_in(request: Request, member: selfservice.Member) -> None:
    s = session(request)
    s.rotate()  # a new id once signed in: a planted or stolen pre-login id is worthless
    for key in ("pending_alias_id", "pending_at", "pending_totp", "pending_next", "pending_auth"):
        s.pop(key)
    s["alias_id"] = member.alias.id
    s["auth"] = selfservice.session_stamp(member.credential)  # other sessions end when the password changes
    s["signed_in_at"] = int(time.time())


@router.post("/account/login")
async def login_submit(request: Request) -> Response:
    state = web(request)
    fields = await form_fields(request)
    address, password = fields.get("address", "").strip(), fields.get("password", "")
    target = safe_next(fields.get("next"))
    form = {"address": address}
    attempt = await state.ctx.limiter.reserve(peer(request), address)
    if isinstance(attempt, Refused):
        return render_me(request, "self/login.html", 429, error=refusal(attempt), next=target, form=form)
    try:
        unlocked = await state.ctx.logins.unlock(state.ctx.config, address, password)
        secret = selfservice.totp_secret(unlocked)
    except StoreUnavailable:
        await attempt.cancel()  # the store's trouble, not a wrong password
        error = "Your mailbox cannot be reached just now; try again in a moment."
        return render_me(request, "self/login.html", 503, error=error, next=target, form=form)
    except (AuthenticationFailed, SealmailError):
        await attempt.failed()
        return render_me(request, "self/login.html", 401, error=WRONG, next=target, form=form)
    member = selfservice.member_of(state.ctx.config, unlocked)
    s = session(request)
    if secret is not None:
        # The password was right: refund this slot, but keep the address's failures (the code is
        # counted on the same address; a right password must not reset its guesses).
        await attempt.cancel()
        s.rotate()
        s["pending_alias_id"] = member.alias.id
        s["pending_at"] = int(time.time())
        s["pending_next"] = target
        s["pending_auth"] = selfservice.session_stamp(member.credential)
        seal_in_session(s, "pending_totp", secret)
        return redirect("/account/login/2fa")
    await attempt.succeeded()
    _sign_in(request, member)
    return redirect(target)


async def _pending(request: Request) -> tuple[selfservice.Member, str] | None:
    s = session(request)
    alias_id, started = s.get("pending_alias_id"), s.get("pending_at", 0)
    if not alias_id or time.time() - started > PENDING_SECONDS:
        return None
    secret = open_from_session(s, "pending_totp")
    state = web(request)
    found = await state.call(selfservice.member, state.ctx.config, alias_id)
    if found is None or secret is None or s.get("pending_auth") != selfservice.session_stamp(found.credential):
        return None
    return found, secret


@router.get("/account/login/2fa")
async def second_factor(request: Request) -> Response:
    if await _pending(request) is None:
        return redirect("/account/login")
    return render_me(request, "self/login_2fa.html")


@router.post("/account/login/2fa")
async def second_factor_submit(request: Request) -> Response:
    state = web(request)
    pending = await _pending(request)
    if pending is None:
        flash(request, "That took too long; sign in again.", "error")
        return redirect("/account/login")
    member, secret = pending
    fields = await form_fields(request)
    attempt = await state.ctx.limiter.reserve(peer(request), member.login)
    if isinstance(attempt, Refused):
        return render_me(request, "self/login_2fa.html", 429, error=refusal(attempt))
    step = totp.step(secret, fields.get("code", ""))
    # RFC 6238 §5.2: a code is accepted once (the single-use mark lives in Redis, shared by web hosts).
    if step is None or not await state.account_sessions.first_use(f"totp:{member.alias.id}:{step}", 120):
        await attempt.failed()
        return render_me(request, "self/login_2fa.html", 401, error="That code is wrong or was used already.")
    await attempt.succeeded()
    target = safe_next(session(request).get("pending_next"))
    _sign_in(request, member)
    return redirect(target)


@router.post("/account/logout")
async def logout(request: Request) -> Response:
    session(request).end()
    return redirect("/account/login")
