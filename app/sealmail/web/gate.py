"""What stands in front of every page of the web admin (a pure ASGI middleware):

1. public paths (MTA-STS policy, autoconfig, Autodiscover, the DAV well-known redirects, static files)
   pass straight through;
2. until an admin account exists, the browser's basic-auth gate (``AUTH_BASIC_USERNAME`` /
   ``AUTH_BASIC_PASSWORD``; failures count toward the per-IP lockout) — in front of everything but
   the users' self-service area (``/account``), where aliases made with the CLI before any admin
   account sign in with their own password;
3. the session is loaded from the opaque cookie of the request's area (``sessions.area_of``: the
   admin pages, or the self-service area, each with its own cookie and store) and saved after the
   response (idle expiry);
4. every unsafe request (POST...) must be a URL-encoded form whose ``csrf`` field matches the
   session's token (synchronizer token), and its Origin, when sent, must be this site; so no form
   can be forgotten;
5. security headers on every response (no external sources: CSP ``'self'`` only).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from sealmail.net.limits import Refused
from sealmail.web.sessions import AREAS, Session, area_of

if TYPE_CHECKING:
    from sealmail.http.server import ASGIApp, Message, Receive, Scope, Send
    from sealmail.web.state import WebState

log = logging.getLogger("sealmail.web")

PUBLIC_PREFIXES = (
    "/static/",
    "/.well-known/mta-sts.txt",
    "/mail/config-v1.1.xml",
    "/.well-known/autoconfig/",
    # client discovery (wellknown.py): RFC 6764 redirects and Microsoft Autodiscover, POSTs included
    "/.well-known/caldav",
    "/.well-known/carddav",
    "/autodiscover/autodiscover.xml",
    "/Autodiscover/Autodiscover.xml",
)
MAX_FORM_BODY = 256 * 1024
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
BASIC_REALM = b'Basic realm="Sealmail setup", charset="UTF-8"'


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _plain(send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *SECURITY_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class WebGate:
    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, self._with_headers(send, None))
            return
        peer = (scope.get("client") or ("unknown",))[0]
        area = area_of(path)
        if area == "admin" and not await self.state.admin_exists() and not await self._basic_auth_ok(scope, peer, send):
            return
        session = await self._load_session(scope, area)
        scope.setdefault("state", {})["session"] = session
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            checked = await self._check_form(scope, receive, send, session)
            if checked is None:
                return
            receive = checked
        await self.app(scope, receive, self._with_headers(send, session))

    # ---- basic auth -------------------------------------------------------------------------------
    async def _basic_auth_ok(self, scope: Scope, peer: str, send: Send) -> bool:
        expected = self.state.basic_auth
        if expected is None:  # nothing configured (tests that start past the first run)
            return True
        limiter = self.state.ctx.limiter
        given = _header(scope, b"authorization") or ""
        attempt = await limiter.reserve(peer, None)
        if isinstance(attempt, Refused):
            text = (
                "Too many sign-ins in progress from your address; try again in a moment.\n"
                if attempt.busy
                else "Too many failed attempts from your address; try again in 15 minutes.\n"
            )
            await _plain(send, 429, text)
            return False
        if given.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(given[6:].strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
            ok_password = hmac.compare_digest(password.encode(), expected[1].encode())
            if ok_user and ok_password:
                await attempt.succeeded()
                return True
            await attempt.failed()
            log.warning("basic-auth gate: wrong credentials", extra={"peer": peer})
        else:
            await attempt.cancel()  # no credentials sent (a browser's first request): nothing was tried
        await _plain(
            send,
            401,
            "Sealmail is not set up yet: sign in with AUTH_BASIC_USERNAME and AUTH_BASIC_PASSWORD.\n",
            [(b"www-authenticate", BASIC_REALM)],
        )
        return False

    # ---- sessions ---------------------------------------------------------------------------------
    async def _load_session(self, scope: Scope, area: str) -> Session:
        raw = _header(scope, b"cookie")
        name = AREAS[area]
        if raw:
            cookies: SimpleCookie = SimpleCookie()
            try:
                cookies.load(raw)
            except Exception:
                cookies = SimpleCookie()
            if name in cookies:
                sid = cookies[name].value
                if 20 <= len(sid) <= 100:
                    data = await self.state.session_store(area).load(sid)
                    if data is not None:
                        return Session(sid, data, area)
        return Session(None, None, area)

    async def _persist(self, session: Session) -> list[tuple[bytes, bytes]]:
        store = self.state.session_store(session.area)
        name = AREAS[session.area]
        headers: list[tuple[bytes, bytes]] = []
        if session.old_sid is not None:
            await store.delete(session.old_sid)
        if session.ended:
            headers.append((b"set-cookie", f"{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax".encode()))
            return headers
        if session.sid is None:
            return headers
        await store.save(session.sid, session.data, self.state.session_ttl)
        # A session cookie (no Max-Age): the browser forgets it on exit; the server forgets it when idle.
        cookie = f"{name}={session.sid}; Path=/; Secure; HttpOnly; SameSite=Lax"
        headers.append((b"set-cookie", cookie.encode()))
        return headers

    def _with_headers(self, send: Send, session: Session | None) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if session is not None:
                    headers += await self._persist(session)
                    if b"cache-control" not in present:
                        headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return sending

    # ---- CSRF -------------------------------------------------------------------------------------
    async def _check_form(self, scope: Scope, receive: Receive, send: Send, session: Session) -> Receive | None:
        origin = _header(scope, b"origin")
        host = _header(scope, b"host") or ""
        if origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
            await _plain(send, 403, "This form was sent from another site and was refused.\n")
            return None
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BODY:
                await _plain(send, 413, "The form is too large.\n")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        token = None
        if content_type == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get("csrf")
            token = values[0] if values else None
        expected = session.get("csrf")
        if not token or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            await _plain(
                send,
                403,
                "The form's security token is missing or expired (CSRF protection). Go back, reload the page "
                "and send the form again.\n",
            )
            return None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect can come now

        return replay
