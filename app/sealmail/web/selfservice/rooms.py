"""What the self-service area's rooms share: the signed-in alias (``Me``), rendering with the
area's navigation, and what asks again for the password.

``ROOMS`` is the navigation; each room is a module of its own beside this one.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from sealmail.crypto import keys
from sealmail.http.state import actor, peer
from sealmail.net.limits import Refused
from sealmail.services import credentials, selfservice
from sealmail.services.credentials import AuthenticationFailed
from sealmail.web.state import LoginRequired, render, session, web

if TYPE_CHECKING:
    from sealmail.services.eventlog import Actor
    from sealmail.web.sessions import Session

ROOMS = (
    ("/account/", "Overview"),
    ("/account/security", "Password and security"),
    ("/account/rules", "Filters and vacation"),
    ("/account/takeout", "Take your mail"),
    ("/account/tokens", "API tokens"),
)
LOCKED_OUT = "Too many failed attempts. Wait 15 minutes, then try again."
BUSY = "Too many sign-ins in progress for this address. Try again in a moment."


def refusal(refused: Refused) -> str:
    return BUSY if refused.busy else LOCKED_OUT


async def current_member(request: Request) -> selfservice.Member:
    """Dependency for every signed-in page of the area."""
    state = web(request)
    s = session(request)
    alias_id = s.get("alias_id")
    if alias_id:
        found = await state.call(selfservice.member, state.ctx.config, alias_id)
        # Removed, disabled, or its password changed since this session signed in: sign in again.
        if found is not None and s.get("auth") == selfservice.session_stamp(found.credential):
            return found
        s.end()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(f"/account/login?next={target}" if request.method == "GET" else "/account/login")


# A signed-in page's parameter: ``me: Me``.
Me = Annotated[selfservice.Member, Depends(current_member)]


def member_actor(request: Request, me: selfservice.Member) -> Actor:
    return actor(request, "web", selfservice.actor_name(me))


def safe_next(target: str | None) -> str:
    """Only the area's own paths: an attacker's link cannot send a fresh sign-in elsewhere."""
    if target and target.startswith("/account") and not target.startswith(("//", "/\\")):
        return target
    return "/account/"


def render_me(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("me", None)
    return render(request, name, status, rooms=ROOMS, **context)


# ---- a value kept in the session, sealed with a key only the browser's cookie holds ---------------
# The pending second factor and a TOTP secret being enrolled wait in the session (Redis) between two
# requests. Sealed with a key derived from the session id, which only the cookie carries (Redis keys
# are its SHA-256), a copy of Redis alone does not reveal them.
def _session_key(s: Session) -> bytes:
    assert s.sid is not None
    return hashlib.sha256(b"sealmail-account-session-seal\0" + s.sid.encode()).digest()


def seal_in_session(s: Session, key: str, value: str) -> None:
    if s.sid is None:
        s[key] = None  # makes the session (and its id) first
    blob = keys.wrap(_session_key(s), value.encode(), key, "session")
    s[key] = base64.b64encode(blob).decode("ascii")


def open_from_session(s: Session, key: str) -> str | None:
    blob = s.get(key)
    if not blob or s.sid is None:
        return None
    try:
        return keys.unwrap(_session_key(s), base64.b64decode(blob), key, "session").decode()
    except (keys.WrongPassword, ValueError):
        return None


# ---- the password again, for what needs the mailbox keys ------------------------------------------
class PasswordRefused(Exception):
    """The password given again was wrong, or the address is locked out: ``message`` says which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def unlock_again(request: Request, me: selfservice.Member, password: str) -> credentials.Unlocked:
    """The mailbox keys, from the password asked for again: the same lockout as a sign-in (a wrong
    password here is a failed attempt on the address). Raises ``PasswordRefused``."""
    state = web(request)
    attempt = await state.ctx.limiter.reserve(peer(request), me.login)
    if isinstance(attempt, Refused):
        raise PasswordRefused(refusal(attempt), 429)
    try:
        unlocked = await state.ctx.logins.unlock(state.ctx.config, me.login, password)
    except AuthenticationFailed:
        await attempt.failed()
        raise PasswordRefused("That password is wrong.", 401) from None
    except BaseException:
        await attempt.cancel()
        raise
    await attempt.succeeded()
    return unlocked
