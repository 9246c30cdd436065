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
import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.dav.application import DavApp
from sealmail.dav.sessions import DavSessions
from sealmail.errors import InvalidInput
from sealmail.net.listen import bound_port, listen_ports
from sealmail.net.tls import ServerTLS
from sealmail.store.dav import DavLimits

if TYPE_CHECKING:
    import ssl

    from sealmail.settings import Settings

log = logging.getLogger("sealmail.dav")


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _uvicorn_server(app: object, ssl_context: ssl.SSLContext | None, settings: Settings) -> object:
    import uvicorn

    from sealmail.web.server import head_timeout_protocol

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The component's process owns SIGTERM/SIGINT (sealmail.runtime); uvicorn must not take them.
            yield

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="off",
        log_config=None,
        access_log=False,
        http=head_timeout_protocol(settings.http_header_timeout),
        ws="none",
        interface="asgi3",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=30,
        # A TLS close waits for the peer's close_notify; an idle client must not hold up a stop.
        timeout_graceful_shutdown=5,
        h11_max_incomplete_event_size=64 * 1024,
    )
    config.load()
    config.ssl = ssl_context
    return Server(config)


class DavComponent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: AppContext | None = None
        self.sessions: DavSessions | None = None
        self._server: object | None = None
        self._task: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []

    def _ssl_context(self) -> ssl.SSLContext | None:
        settings = self.settings
        if settings.tls_cert_file is None and settings.dav_insecure_http:
            if not all(_is_loopback(address) for address in settings.bind_addresses):
                raise InvalidInput(
                    "SEALMAIL_DAV_INSECURE_HTTP serves passwords in clear: "
                    "it needs loopback SEALMAIL_BIND_ADDRESSES only (127.0.0.1, ::1)"
                )
            log.warning(
                "serving DAV without TLS on %s (SEALMAIL_DAV_INSECURE_HTTP)", ", ".join(settings.bind_addresses)
            )
            return None
        return ServerTLS.from_settings(settings, alpn=("http/1.1",)).listening_context()

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
        asgi = WSGIMiddleware(wsgi, workers=settings.dav_workers)  # type: ignore[arg-type]
        bound = listen_ports(settings, {"caldav": settings.caldav_port, "carddav": settings.carddav_port})
        self._sockets = bound["caldav"] + bound["carddav"]
        ports = {key: bound_port(sockets) for key, sockets in bound.items()}
        server = _uvicorn_server(asgi, ssl_context, settings)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=self._sockets), name="dav-http")  # type: ignore[attr-defined]
        while not server.started:  # type: ignore[attr-defined]
            if self._task.done():
                self._task.result()
                raise RuntimeError("the DAV server stopped while starting")
            await asyncio.sleep(0.01)
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
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 15)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("dav: connections did not close in time; stopping anyway")
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self.sessions is not None:
            await self.sessions.close()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self.app is not None:
            await self.app.close()
