"""Listeners and connections for Sealmail's line-based protocol servers (IMAP, POP3, ManageSieve).

``LineServer`` owns what every such protocol needs: implicit-TLS and plain listeners, STARTTLS,
connection ids for logs, a global and a per-IP connection limit (over it, the protocol's
``refuse`` answers and the slot is freed), bounded line reads, write back-pressure with a
deadline (a client that stops reading cannot make the server buffer without bound), and a
graceful stop. Protocol code implements ``handle`` and ``refuse``.

``LineComponent`` is the component around it (``sealmail serve imap|pop3|managesieve``): the
certificate, the drain flag, binding the component's ports (all or nothing), the answer over a
connection limit, the count of open sessions and the stop. A protocol's component brings its
ports, limits and replies, and what its sessions share (``_open``/``_close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, cast

from sealmail.logs import EventLogger
from sealmail.net.deflate import Deflater, Inflater
from sealmail.net.drain import DrainFlag
from sealmail.net.listen import BACKLOG, bound_port, close_all, listen_ports, serve_each
from sealmail.net.tls import ServerTLS, TLSUnavailable

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.net")
DEFLATE_RELEASE_AFTER = 30.0  # seconds quiet before a compressed connection drops its compressor state


class LineTooLong(Exception):
    """A line exceeded the protocol's limit; the reader discarded it up to its end."""


class ConnectionClosed(Exception):
    """The peer went away (or stopped reading past the write deadline)."""


@dataclass(slots=True)
class Limits:
    max_connections: int = 5000
    max_per_ip: int = 50
    max_line: int = 64 * 1024
    write_deadline: float = 60.0  # seconds a blocked write may wait for the peer to read


class LineTransport(Protocol):
    """What a line-protocol session needs from its connection (``Connection`` provides it); each
    protocol's session adds what else it uses (IMAP: COMPRESS, ManageSieve: literals by size)."""

    secure: bool
    peer_ip: str

    @property
    def can_starttls(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    async def flush(self) -> None: ...

    async def readline(self, timeout: float | None = None) -> bytes: ...

    async def starttls(self, reply: bytes | None = None) -> None: ...


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        component: str,
        limits: Limits,
        tls: ServerTLS | None,
    ) -> None:
        self.reader: asyncio.StreamReader | Inflater = reader  # an Inflater once COMPRESS is on
        self.writer = writer
        self._deflater: Deflater | None = None
        self.id = secrets.token_hex(4)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer_ip, self.peer_port = str(peer[0]), int(peer[1])
        self.local_port = int((writer.get_extra_info("sockname") or ("?", 0))[1])
        self.limits = limits
        self._tls = tls
        self.secure = writer.get_extra_info("ssl_object") is not None
        self.log = EventLogger(component, conn=self.id, peer=self.peer_ip)

    @property
    def can_starttls(self) -> bool:
        return self._tls is not None and not self.secure

    async def readline(self, timeout: float | None = None) -> bytes:
        """One line including its CRLF (or LF); raises LineTooLong, ConnectionClosed, TimeoutError."""
        try:
            # asyncio.timeout, not wait_for: no extra task per line (measurable per POP3/IMAP command).
            async with asyncio.timeout(timeout):
                line = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            await self._discard_line()
            raise LineTooLong from None
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed from exc
        except (ConnectionError, ssl.SSLError) as exc:
            raise ConnectionClosed from exc
        if len(line) > self.limits.max_line:
            raise LineTooLong
        return line

    async def _discard_line(self) -> None:
        while True:
            try:
                await self.reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self.reader.readexactly(exc.consumed)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise ConnectionClosed from exc

    async def readexactly(self, count: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.readexactly(count)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
            raise ConnectionClosed from exc

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            if self._deflater is not None:
                data = self._deflater.compress(data)
            if data:
                self.writer.write(data)

    async def flush(self) -> None:
        """Wait until the peer has taken our output (bounded by the write deadline)."""
        if self._deflater is not None and not self.writer.is_closing():
            tail = self._deflater.flush()  # every response decodable as soon as it arrives
            if tail:
                self.writer.write(tail)
        try:
            async with asyncio.timeout(self.limits.write_deadline):
                await self.writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            raise ConnectionClosed from exc

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.flush()

    async def starttls(self, reply: bytes | None = None) -> None:
        """Switch to TLS; ``reply`` (the go-ahead, e.g. ``+OK Begin TLS negotiation``) is sent first.

        Whatever the client sent after its STARTTLS/STLS command arrived in clear: it must not count as
        sent under TLS (the CVE-2011-0411 command injection), so it is dropped. With ``reply``, reading
        stops before the go-ahead goes out, so the client's ClientHello cannot be read as clear text
        in between; it waits in the socket for the TLS layer.
        """
        assert self._tls is not None
        # asyncio keeps the read-ahead in StreamReader._buffer; there is no public way to drop it.
        self.reader._buffer.clear()  # type: ignore[union-attr]
        if reply is not None:
            cast(asyncio.Transport, self.writer.transport).pause_reading()
            self.writer.write(reply)
        try:
            await self.writer.start_tls(self._tls.context())
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            raise ConnectionClosed from exc
        self.secure = True

    @property
    def compressed(self) -> bool:
        return self._deflater is not None

    async def compress(self, reply: bytes) -> None:
        """Turn on DEFLATE both ways (RFC 4978 §3): ``reply``, the go-ahead, is the last thing sent in
        clear; the client compresses from its next command on, so whatever was read ahead is compressed."""
        assert isinstance(self.reader, asyncio.StreamReader), "compression is on already"
        await self.send(reply)
        self.reader = Inflater(self.reader, self.limits.max_line)
        self._deflater = Deflater(release_after=DEFLATE_RELEASE_AFTER)

    async def close(self) -> None:
        if self._deflater is not None:
            self._deflater.close()
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)


Handler = Callable[[Connection], Awaitable[None]]


def _never() -> bool:
    return False


@dataclass
class LineServer:
    """Serves ``handle`` on any number of listeners; ``refuse`` answers connections over a limit."""

    component: str
    handle: Handler
    refuse: Handler
    limits: Limits = field(default_factory=Limits)
    tls: ServerTLS | None = None
    # Draining (``sealmail.net.drain``): while ``draining()`` is true a new connection gets
    # ``drain_reply`` and is closed; open sessions go on.
    draining: Callable[[], bool] = _never
    drain_reply: bytes = b""
    _servers: list[asyncio.Server] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _per_ip: Counter[str] = field(default_factory=Counter)

    async def listen(self, sockets: Sequence[socket.socket], *, implicit_tls: bool) -> int:
        """Serve on bound sockets (``sealmail.net.listen``), all on one port; returns that port."""
        ssl_context = None
        if implicit_tls:
            assert self.tls is not None, "implicit TLS needs a certificate"
            ssl_context = self.tls.context()
        extra: dict[str, Any] = {"ssl_handshake_timeout": 30} if ssl_context else {}

        def start(sock: socket.socket) -> Awaitable[asyncio.Server]:
            return asyncio.start_server(
                self._accept, sock=sock, ssl=ssl_context, limit=self.limits.max_line, backlog=BACKLOG, **extra
            )

        self._servers += await serve_each(start, sockets)
        return bound_port(sockets)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer, self.component, self.limits, self.tls)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        over = len(self._tasks) > self.limits.max_connections or self._per_ip[conn.peer_ip] >= self.limits.max_per_ip
        self._per_ip[conn.peer_ip] += 1
        try:
            if self.draining():
                await conn.send(self.drain_reply)
            elif over:
                conn.log.warning("connection limit reached; refusing")
                await self.refuse(conn)
            else:
                await self.handle(conn)
        except ConnectionClosed:
            pass
        except Exception:
            conn.log.exception("session failed")
        finally:
            self._per_ip[conn.peer_ip] -= 1
            if self._per_ip[conn.peer_ip] <= 0:
                del self._per_ip[conn.peer_ip]
            self._tasks.discard(task)
            await conn.close()

    @property
    def sessions(self) -> int:
        """Connections open now (served or being refused)."""
        return len(self._tasks)

    async def close(self, grace: float = 5.0) -> None:
        for server in self._servers:
            server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


class Listen(NamedTuple):
    """One of a component's ports: its number and whether TLS starts at once (RFC 8314) or by command."""

    port: int
    implicit_tls: bool


class LineComponent(ABC):
    """A line-protocol component as ``sealmail serve`` runs it: ``start`` returns once it listens.

    Subclasses set the class constants and implement ``_ports``, ``_limits`` and ``_handle``,
    ``_open`` (what their sessions share, made before anything listens) and ``_close`` (releases
    it once the last session has ended).
    """

    name: ClassVar[str]  # the component, in logs: "imap"
    title: ClassVar[str]  # the protocol, in messages: "IMAP"
    refusal: ClassVar[bytes]  # the answer to a connection over a limit
    drain_reply: ClassVar[bytes]  # the answer to a connection while the host drains (``sealmail.net.drain``)
    alpn: ClassVar[tuple[str, ...] | None] = None  # None: ``ServerTLS``'s default
    stop_grace: ClassVar[float] = 5.0  # seconds open sessions get to end when the component stops

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: LineServer | None = None

    @abstractmethod
    def _ports(self) -> dict[str, Listen]:
        """Port key (as ``sealmail.components.PORTS`` names it) -> where and how it listens."""

    @abstractmethod
    def _limits(self) -> Limits: ...

    @abstractmethod
    async def _handle(self, conn: Connection) -> None:
        """Serve one connection to its end."""

    @abstractmethod
    async def _open(self) -> None:
        """Make what the sessions share; runs once the certificate is known to load."""

    @abstractmethod
    async def _close(self) -> None:
        """Release what ``_open`` made, if it ran (``stop`` also follows a failed start); runs once
        the listeners and the sessions have ended."""

    async def start(self) -> dict[str, int]:
        try:
            tls = ServerTLS.from_settings(self.settings, alpn=self.alpn)
        except TLSUnavailable as exc:
            raise TLSUnavailable(f"{self.title} needs a certificate: {exc}") from None
        await self._open()
        self.server = LineServer(
            self.name,
            self._handle,
            self._refuse,
            self._limits(),
            tls,
            draining=DrainFlag(self.settings.run_dir),
            drain_reply=self.drain_reply,
        )
        ports = self._ports()
        bound = listen_ports(self.settings, {key: where.port for key, where in ports.items()})
        try:
            return {
                key: await self.server.listen(bound.pop(key), implicit_tls=where.implicit_tls)
                for key, where in ports.items()
            }
        finally:
            close_all(s for group in bound.values() for s in group)  # those not handed over

    async def _refuse(self, conn: Connection) -> None:
        await conn.send(self.refusal)

    @property
    def sessions(self) -> int:
        """Connections open now (``sealmail status``: how far a drain has come)."""
        return self.server.sessions if self.server is not None else 0

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.close(grace=self.stop_grace)
        await self._close()


def revoked_now(revoked: str | None) -> bool:
    """Whether the cancellation being handled is a session's revocation (``revoked``: why it was
    revoked, or None) rather than the server stopping: if so it is swallowed (uncancelled)."""
    task = asyncio.current_task()
    if revoked is None or task is None:
        return False
    task.uncancel()
    return task.cancelling() == 0
