"""Signed-in DAV users: one Argon2id per client, not per request.

A CalDAV client sends Basic credentials with every request. Unlocking a mailbox costs one Argon2id
derivation (~80 ms), so an unlocked session is kept in this process's memory for a short time,
found again by (login, keyed hash of the password). The password itself is never kept, and the
keys never leave memory. A cached session is re-checked against the config store every few seconds
(cheap: no KDF), so a changed password, a disabled alias or a removed mailbox ends it at once;
and a revocation from any process (``services.revocation``) drops the account's cached sessions
the moment it arrives, so the next request signs in again (and a stolen password gets 401).

Failed logins are throttled per IP and per account (``LoginLimiter``): past the limit a client is
refused without running Argon2 at all.

The WSGI worker threads call ``login()``; the mailbox handles and the limiter live on the
component's event loop, reached with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sealmail.net.limits import Refused
from sealmail.services import credentials, revocation, sessions
from sealmail.store.dav import DavLimits

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from sealmail.appcontext import AppContext
    from sealmail.store.contract import MailboxOps as Mailbox

log = logging.getLogger("sealmail.dav")

# Made at first use of an account's calendars (RFC 4791 §4.2 leaves this to the server).
DEFAULT_COLLECTIONS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "calendar",
        "VCALENDAR",
        {"D:displayname": "Calendar", "C:supported-calendar-component-set": "VEVENT,VTODO,VJOURNAL"},
    ),
    ("contacts", "VADDRESSBOOK", {"D:displayname": "Contacts"}),
)


@dataclass
class DavUser:
    """One unlocked account, shared by every request that presents the same credentials."""

    address: str  # canonical address: the Radicale user name and the principal's path segment
    alias_id: str
    password_hash: str  # the verifier this session was opened under (a change ends the session)
    session: sessions.MailboxSession
    limits: DavLimits
    expires: float
    checked: float
    users: int = 0  # requests in flight
    retired: bool = False  # out of the cache; closes when its last request ends
    closed: bool = field(default=False)

    @property
    def mailbox(self) -> Mailbox:
        return self.session.mailbox.mailbox


class DavSessions:
    def __init__(
        self,
        app: AppContext,
        loop: asyncio.AbstractEventLoop,
        *,
        ttl: float,
        recheck: float = 10.0,
        limits: DavLimits | None = None,
    ) -> None:
        self.app = app
        self.loop = loop
        self.ttl = ttl
        self.recheck = recheck
        self.limits = limits or DavLimits()
        self._salt = secrets.token_bytes(32)  # keys the cache per process: digests mean nothing elsewhere
        self._cache: dict[bytes, DavUser] = {}
        self._lock = threading.Lock()
        self._pending: dict[bytes, threading.Lock] = {}
        self._revocations: revocation.Watch | None = None

    # ---- called on worker threads ----------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _key(self, login: str, password: str) -> bytes:
        return hmac.new(self._salt, login.encode() + b"\0" + password.encode(), hashlib.sha256).digest()

    def login(self, login: str, password: str, ip: str) -> DavUser | None:
        """The unlocked account for these credentials, or None (wrong, throttled, or no mailbox).

        A returned user is held for the request: call ``done(user)`` when it ends.
        """
        if not login or not password or len(login) > 320 or len(password) > 1024:
            return None
        key = self._key(login, password)
        user = self._cached(key)
        if user is not None:
            return user
        # One derivation per credentials even when a client opens several connections at once.
        with self._lock:
            gate = self._pending.setdefault(key, threading.Lock())
        try:
            with gate:
                user = self._cached(key)
                if user is not None:
                    return user
                user = self._sign_in(login, password, ip)
                if user is not None:
                    with self._lock:
                        self._cache[key] = user
                        user.users += 1
                return user
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def done(self, user: DavUser) -> None:
        with self._lock:
            user.users -= 1
            close = user.retired and user.users == 0
        if close:
            self._close_later(user)

    def _cached(self, key: bytes) -> DavUser | None:
        with self._lock:
            user = self._cache.get(key)
        if user is None:
            return None
        now = time.monotonic()
        if now >= user.expires or (now - user.checked >= self.recheck and not self._still_valid(user)):
            self._retire(key, user)
            return None
        with self._lock:
            if user.retired:
                return None
            if now - user.checked >= self.recheck:
                user.checked = now
            user.users += 1
        return user

    def _still_valid(self, user: DavUser) -> bool:
        try:
            alias = self.app.config.get_alias(user.alias_id)
            credential = self.app.config.get_credential(user.alias_id)
        except Exception:  # removed alias, or the config store failing: sign in again
            return False
        return bool(
            alias.enabled
            and alias.storage
            and credential is not None
            and credential.password_hash == user.password_hash
            and credential.mailbox_id == user.session.unlocked.mailbox_id
        )

    def _retire(self, key: bytes, user: DavUser) -> None:
        with self._lock:
            if self._cache.get(key) is user:
                del self._cache[key]
            user.retired = True
            close = user.users == 0
        if close:
            self._close_later(user)

    def _close_later(self, user: DavUser) -> None:
        with self._lock:
            if user.closed:
                return
            user.closed = True
        asyncio.run_coroutine_threadsafe(user.session.close(), self.loop)

    def _sign_in(self, login: str, password: str, ip: str) -> DavUser | None:
        limiter = self.app.limiter
        attempt = self._run(limiter.reserve(ip, login))
        if isinstance(attempt, Refused):
            log.warning("dav login refused: %s (peer %s)", attempt.reason, ip)
            return None
        try:
            session = self._run(sessions.sign_in(self.app.logins, self.app.config, self.app.mailstore, login, password))
        except credentials.AuthenticationFailed:
            self._run(attempt.failed())
            log.info("dav login failed (peer %s)", ip)
            return None
        except BaseException:
            self._run(attempt.cancel())  # the server's trouble (the store away), not a wrong password
            raise
        self._run(attempt.succeeded())
        try:
            session.mailbox.mailbox.dav_ensure_defaults(DEFAULT_COLLECTIONS)
        except Exception:
            self._run(session.close())
            raise
        now = time.monotonic()
        user = DavUser(
            address=session.address,
            alias_id=session.unlocked.alias.id,
            password_hash=session.unlocked.credential.password_hash,
            session=session,
            limits=self.limits,
            expires=now + self.ttl,
            checked=now,
        )
        log.info("dav login %s (peer %s)", user.address, ip)
        return user

    # ---- called on the event loop ----------------------------------------------------------------
    async def watch_revocations(self) -> None:
        self._revocations = await self.app.revocations.watch(None, self._revoked)

    def _revoked(self, event: revocation.Revoked) -> None:
        with self._lock:
            found = [(k, u) for k, u in self._cache.items() if u.alias_id == event.account_id]
        for key, user in found:
            log.info("dav session of %s ends: the account's credentials changed", user.address)
            self._retire(key, user)

    async def reap(self, interval: float = 5.0) -> None:
        """Close sessions whose time is up (their mailbox handle goes with the last user)."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            with self._lock:
                expired = [(k, u) for k, u in self._cache.items() if now >= u.expires]
            for key, user in expired:
                self._retire(key, user)

    async def close(self) -> None:
        if self._revocations is not None:
            self._revocations.cancel()
            self._revocations = None
        with self._lock:
            users = list(self._cache.values())
            self._cache.clear()
        for user in users:
            if not user.closed:
                user.closed = True
                with contextlib.suppress(Exception):
                    await user.session.close()
