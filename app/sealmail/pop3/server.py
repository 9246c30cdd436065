"""The POP3 component: implicit TLS on 995 (RFC 8314) and STLS on 110 (RFC 2595), one process.

``sealmail serve pop3`` runs it; ``sealmail dev`` starts it on 2995/2110.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.net.drain import POP3_DRAINING, DrainFlag
from sealmail.net.listen import close_all, listen_ports
from sealmail.net.server import Connection, Limits, LineServer
from sealmail.net.tls import ServerTLS
from sealmail.pop3.policy import LoginDelay
from sealmail.pop3.session import Pop3Policy, Pop3Session

if TYPE_CHECKING:
    from sealmail.settings import Settings

# RFC 2449 §4: command lines are at most 255 octets; a SASL response may be longer (RFC 5034 §4).
MAX_LINE = 8192


def policy_from(settings: Settings) -> Pop3Policy:
    expire = settings.pop3_expire
    return Pop3Policy(
        delete_mode=settings.pop3_delete_mode,
        expire_days=None if expire == "never" else int(expire),
        login_delay=settings.pop3_login_delay,
        idle_timeout=settings.pop3_idle_timeout,
    )


class Pop3Server:
    """The listeners and the shared per-process state (config store, Redis, mailboxes)."""

    def __init__(self, settings: Settings, ctx: AppContext | None = None, tls: ServerTLS | None = None) -> None:
        self.settings = settings
        self.ctx = ctx or AppContext(settings)
        self._own_ctx = ctx is None
        self.tls = tls or ServerTLS.from_settings(settings)
        self.policy = policy_from(settings)
        self.login_delay = LoginDelay(self.ctx.redis, self.policy.login_delay)
        limits = Limits(
            max_connections=settings.pop3_max_connections,
            max_per_ip=settings.pop3_max_connections_per_ip,
            max_line=MAX_LINE,
        )
        self.server = LineServer("pop3", self._handle, self._refuse, limits, self.tls)
        self.server.draining, self.server.drain_reply = DrainFlag(settings.run_dir), POP3_DRAINING

    async def _handle(self, conn: Connection) -> None:
        await Pop3Session(conn, self.ctx, self.policy, self.login_delay).run()

    async def _refuse(self, conn: Connection) -> None:
        await conn.send(b"-ERR [SYS/TEMP] Too many connections; try again later\r\n")

    async def listen(self, bound: dict[str, list[socket.socket]]) -> dict[str, int]:
        """Serve on ``{"pop3s": sockets, "pop3": sockets}`` (``sealmail.net.listen.listen_ports``)."""
        try:
            return {
                "pop3s": await self.server.listen(bound.pop("pop3s"), implicit_tls=True),
                "pop3": await self.server.listen(bound.pop("pop3"), implicit_tls=False),
            }
        finally:
            close_all(s for group in bound.values() for s in group)  # those not handed over

    async def close(self) -> None:
        # Sessions still open are cancelled without UPDATE: nothing they marked is removed.
        await self.server.close(grace=2.0)
        if self._own_ctx:
            await self.ctx.close()


class Pop3Component:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Pop3Server | None = None

    async def start(self) -> dict[str, int]:
        self.server = Pop3Server(self.settings)
        ports = {"pop3s": self.settings.pop3s_port, "pop3": self.settings.pop3_port}
        return await self.server.listen(listen_ports(self.settings, ports))

    @property
    def sessions(self) -> int:
        """Connections open now (``sealmail status``: how far a drain has come)."""
        return self.server.server.sessions if self.server is not None else 0

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.close()
