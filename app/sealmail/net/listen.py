"""Listening sockets for every component, on several addresses at once (IPv4 and IPv6).

``bind_sockets(addresses, port)`` is the one place a Sealmail listener is bound: the MX (and the
parent of its session processes), submission, IMAP, POP3, DAV, web and API all call it.

- IPv6 sockets are ``IPV6_V6ONLY`` (RFC 3493 §5.3), so ``0.0.0.0`` and ``::`` bind the same port
  side by side and an IPv4 client is never seen as ``::ffff:a.b.c.d``.
- Port 0 (tests): the first socket picks the port, the others bind the same one; when another
  program holds that port on a later address, everything is bound afresh (a few tries).
- ``SO_REUSEADDR`` (a restart does not wait for old connections in TIME_WAIT), ``IPPROTO_TCP``
  (asyncio sets ``TCP_NODELAY`` only on accepted sockets created with it; without it small final
  writes wait for the peer's delayed ACK), inheritable (the sockets may be handed to uvicorn or a
  child process).
- ``localhost`` means ``127.0.0.1`` and ``::1``.
- A host without IPv6 (``EADDRNOTAVAIL``/``EAFNOSUPPORT`` on an IPv6 address) is tolerated only
  when the caller says IPv6 is optional (the default address lists): the IPv6 addresses are
  skipped with one warning. Otherwise, and for any other failure, ``ListenError`` names the
  address and port.

The sockets are bound, not listening: asyncio's ``create_server(sock=...)`` and uvicorn call
``listen()`` with their own backlog.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.net")
T = TypeVar("T")

# What a server listens on unless told otherwise, and what `sealmail dev` listens on.
DEFAULT_ADDRESSES = ("0.0.0.0", "::")  # noqa: S104 - a mail server serves the world
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
# Connections the kernel completes and queues before the server accepts them (the kernel caps it
# at net.core.somaxconn). asyncio's default, 100, overflows in a reconnect storm: the kernel then
# drops SYNs and clients wait seconds for retransmissions, or time out. nginx uses 511, uvicorn 2048.
BACKLOG = 1024

_NO_IPV6 = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
_PORT_ZERO_TRIES = 5


class ListenError(OSError):
    """A listening address could not be bound; ``strerror`` names the address and the port."""


def endpoint(address: str, port: int) -> str:
    """``127.0.0.1:25`` or ``[::]:25``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def expand(addresses: Iterable[str]) -> list[tuple[str, bool]]:
    """The addresses to bind, each with whether it was implied (``localhost``'s ``::1``), without repeats."""
    out: dict[str, bool] = {}
    for address in addresses:
        if address.lower() == "localhost":
            out.setdefault("127.0.0.1", True)
            out.setdefault("::1", True)
        else:
            out[address] = False
    return list(out.items())


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address.split("%", 1)[0]).version == 6 else socket.AF_INET


def _bind_one(address: str, port: int) -> socket.socket:
    family = _family(address)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def bind_sockets(addresses: Sequence[str], port: int, *, ipv6_optional: bool = False) -> list[socket.socket]:
    """One bound TCP socket per address, all on the same port (see the module's docstring)."""
    wanted = expand(addresses)
    if not wanted:
        raise ListenError(errno.EINVAL, "no address to listen on")
    for attempt in range(_PORT_ZERO_TRIES):
        sockets: list[socket.socket] = []
        skipped: list[str] = []
        chosen = port
        try:
            for address, implied in wanted:
                try:
                    sock = _bind_one(address, chosen)
                except OSError as exc:
                    optional = (ipv6_optional or implied) and ":" in address
                    if optional and exc.errno in _NO_IPV6:
                        skipped.append(address)
                        continue
                    raise ListenError(
                        exc.errno, f"cannot listen on {endpoint(address, chosen)}: {exc.strerror or exc}"
                    ) from exc
                sockets.append(sock)
                if chosen == 0:
                    chosen = sock.getsockname()[1]
        except ListenError as exc:
            for sock in sockets:
                sock.close()
            # Port 0: another program took the picked port on a later address; pick again.
            if port == 0 and sockets and exc.errno == errno.EADDRINUSE and attempt + 1 < _PORT_ZERO_TRIES:
                continue
            raise
        if not sockets:
            raise ListenError(errno.EADDRNOTAVAIL, f"none of {', '.join(addresses)} can be bound on this host")
        if skipped:
            log.warning("no IPv6 on this host: not listening on %s", ", ".join(endpoint(a, chosen) for a in skipped))
        return sockets
    raise AssertionError("unreachable")  # pragma: no cover


def listen_sockets(settings: Settings, port: int) -> list[socket.socket]:
    """``bind_sockets`` for the settings' ``bind_addresses``.

    IPv6 is optional only when the addresses are the default (or `sealmail dev`'s loopback pair): a
    host without IPv6 then serves IPv4 alone, with a warning. An address the operator chose is required.
    """
    addresses = tuple(settings.bind_addresses)
    return bind_sockets(addresses, port, ipv6_optional=addresses in (DEFAULT_ADDRESSES, LOOPBACK_ADDRESSES))


def listen_ports(settings: Settings, ports: dict[str, int]) -> dict[str, list[socket.socket]]:
    """``listen_sockets`` for several ports (``{"imaps": 993, "imap": 143}``); nothing stays bound on failure."""
    bound: dict[str, list[socket.socket]] = {}
    try:
        for key, port in ports.items():
            bound[key] = listen_sockets(settings, port)
    except BaseException:
        close_all(s for group in bound.values() for s in group)
        raise
    return bound


def bound_port(sockets: Sequence[socket.socket]) -> int:
    """The port a group of sockets from ``bind_sockets`` shares."""
    return int(sockets[0].getsockname()[1])


def close_all(sockets: Iterable[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


async def serve_each(start: Callable[[socket.socket], Awaitable[T]], sockets: Sequence[socket.socket]) -> list[T]:
    """``start(sock)`` (``loop.create_server(..., sock=sock)``) for every socket; all or nothing.

    A server owns its socket once started; on failure the started ones are closed, and so are the
    sockets not handed over yet.
    """
    servers: list[T] = []
    try:
        for sock in sockets:
            servers.append(await start(sock))
    except BaseException:
        for server in servers:
            server.close()  # type: ignore[attr-defined]
        close_all(sockets[len(servers) :])
        raise
    return servers
