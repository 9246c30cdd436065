"""``sealmail serve dav``: CalDAV on ``caldav_port`` and CardDAV on ``carddav_port`` (one application
answers both; each port's well-known URI leads to the same principal).

HTTPS with the settings' certificate (renewals are picked up without a restart). Plain HTTP only
when ``SEALMAIL_DAV_INSECURE_HTTP=true`` *and* the bind address is loopback: for a TLS-terminating
proxy on the same host, or tests; otherwise the component refuses to start without a certificate.

uvicorn runs in the component's event loop; Radicale (WSGI) runs on a pool of worker threads, so
no SQLite work or Argon2 derivation ever runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.dav.application import DavApp
from sealmail.dav.sessions import DavSessions
from sealmail.errors import InvalidInput
from sealmail.http.server import HttpServer, is_loopback, settings_tls
from sealmail.store.dav import DavLimits

if TYPE_CHECKING:
    import ssl

    from sealmail.http.server import ASGIApp
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.dav")


class DavComponent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: AppContext | None = None
        self.sessions: DavSessions | None = None
        self._server: HttpServer | None = None
        self._reaper: asyncio.Task[None] | None = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        settings = self.settings
        if settings.tls_cert_file is None and settings.dav_insecure_http:
            if not all(is_loopback(address) for address in settings.bind_addresses):
                raise InvalidInput(
                    "SEALMAIL_DAV_INSECURE_HTTP serves passwords in clear: "
                    "it needs loopback SEALMAIL_BIND_ADDRESSES only (127.0.0.1, ::1)"
                )
            log.warning(
                "serving DAV without TLS on %s (SEALMAIL_DAV_INSECURE_HTTP)", ", ".join(settings.bind_addresses)
            )
            return None
        return settings_tls(settings)

    async def start(self) -> dict[str, int]:
        from a2wsgi import WSGIMiddleware

        settings = self.settings
        ssl_context = self._ssl_context()
        self.app = AppContext(settings)
        limits = DavLimits(
            max_item_size=settings.dav_max_item_size,
            max_collection_items=settings.dav_max_collection_items,
            max_collections=settings.dav_max_collections,
        )
        loop = asyncio.get_running_loop()
        self.sessions = DavSessions(self.app, loop, ttl=settings.dav_session_seconds, limits=limits)
        await self.sessions.watch_revocations()
        wsgi = DavApp(
            self.sessions, max_request_size=settings.dav_max_request_size, max_item_size=settings.dav_max_item_size
        )
        # a2wsgi's own ASGI types are narrower than the interface (its WSGI app type is the stdlib's)
        asgi: ASGIApp = WSGIMiddleware(wsgi, workers=settings.dav_workers)  # type: ignore[arg-type,assignment]
        wanted = {"caldav": settings.caldav_port, "carddav": settings.carddav_port}
        # No access log: DAV has never written one (a path names a user's calendar or address book).
        self._server = HttpServer(asgi, settings, "dav", wanted, ssl_context=ssl_context, access_log=False, title="DAV")
        ports = await self._server.start()
        self._reaper = asyncio.create_task(self.sessions.reap(), name="dav-sessions")
        log.info(
            "dav listening: caldav %d, carddav %d (%s)",
            ports["caldav"],
            ports["carddav"],
            "https" if ssl_context else "http",
        )
        return ports

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self.sessions is not None:
            await self.sessions.close()
        if self.app is not None:
            await self.app.close()
