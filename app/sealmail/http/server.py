"""Serving an ASGI application with uvicorn inside a component's own event loop (web, API, DAV).

HTTPS with the settings' certificate (``settings_tls``: renewals followed without a restart).
uvicorn's access log is off: ``AccessLogMiddleware`` writes one line per request with the path
only (no query string, no body, no headers), so nothing a form or a URL carries reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from sealmail.net.listen import bound_port, close_all, listen_ports
from sealmail.net.tls import ServerTLS

if TYPE_CHECKING:
    import ssl

    import uvicorn

    from sealmail.settings import Settings

# The ASGI 3 interface, spelled out (the same shapes as starlette.types).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def settings_tls(settings: Settings) -> ssl.SSLContext:
    """The listening context for the settings' certificate (HTTP/1.1 by ALPN)."""
    return ServerTLS.from_settings(settings, alpn=("http/1.1",)).listening_context()


def head_timeout_protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a deadline on each request head (slowloris).

    uvicorn arms no timer until a first response is sent, and its keep-alive timer stops at the
    first byte of a next request: a client that connects and says nothing, or sends a request head
    one byte at a time, holds its connection for ever. Here the head must arrive whole within
    ``timeout`` of the connection's start, or of the end of the previous response; bytes trickled
    meanwhile do not push the deadline back. A request being answered is never cut.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm_head_timer(self) -> None:
            self._stop_head_timer()
            self._head_timer = self.loop.call_later(timeout, self._head_timed_out)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._stop_head_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._arm_head_timer()

    return HeadTimeoutProtocol


class AccessLogMiddleware:
    """One line per request: method, path (never the query string), status, duration, peer."""

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.log = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            peer = (scope.get("client") or ("-",))[0]
            self.log.info(
                "%s %s %d %.0fms",
                scope["method"],
                scope["path"],
                status,
                (time.monotonic() - started) * 1000,
                extra={"peer": peer},
            )


class HttpServer:
    """``await start()`` binds every port and serves them all; ``await stop()`` lets requests finish
    (a few seconds at most).

    ``ssl_context`` None is plain HTTP (the ACME/redirect port, and DAV behind a local proxy);
    ``access_log`` False leaves the per-request line out (DAV writes none).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        name: str,
        ports: dict[str, int],
        *,
        ssl_context: ssl.SSLContext | None,
        access_log: bool = True,
        title: str | None = None,
    ) -> None:
        self.app, self.settings, self.name, self.ports = app, settings, name, ports
        self.ssl_context = ssl_context
        self.access_log = access_log
        self.title = title or name  # in the error when the server dies while starting
        self.log = logging.getLogger(f"sealmail.{name}")
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []

    async def start(self) -> dict[str, int]:
        """Serving; the port each key got (0 asks the system for a free one)."""
        import uvicorn

        bound = listen_ports(self.settings, self.ports)
        self._sockets = [sock for group in bound.values() for sock in group]

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The component's process owns SIGTERM/SIGINT (sealmail.runtime); uvicorn must not take them.
                yield

        app = AccessLogMiddleware(self.app, self.log) if self.access_log else self.app
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,  # ours logs the path only: no query strings, no bodies
            http=head_timeout_protocol(self.settings.http_header_timeout),
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
        config.ssl = self.ssl_context
        server = Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=self._sockets), name=f"{self.name}-http")
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the {self.title} server stopped while starting")
            await asyncio.sleep(0.01)
        return {key: bound_port(sockets) for key, sockets in bound.items()}

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 15)
            except (TimeoutError, asyncio.CancelledError):
                self.log.warning("%s: connections did not close in time; stopping anyway", self.name)
        close_all(self._sockets)
        self._sockets = []
