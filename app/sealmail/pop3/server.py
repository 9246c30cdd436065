"""The POP3 component: implicit TLS on 995 (RFC 8314) and STLS on 110 (RFC 2595), one process.

``sealmail serve pop3`` runs it; ``sealmail dev`` starts it on 2995/2110.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.net.drain import POP3_DRAINING
from sealmail.net.server import Connection, Limits, LineComponent, Listen
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


class Pop3Component(LineComponent):
    """``sealmail serve pop3``: POP3S and POP3 (STLS) listeners over one AppContext."""

    name = "pop3"
    title = "POP3"
    refusal = b"-ERR [SYS/TEMP] Too many connections; try again later\r\n"
    drain_reply = POP3_DRAINING
    # At a stop, sessions still open after this are cancelled without UPDATE: nothing they marked is removed.
    stop_grace = 2.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.ctx: AppContext | None = None
        self.login_delay: LoginDelay | None = None
        self.policy = policy_from(settings)  # read by every new session (tests shorten its timeouts)

    def _ports(self) -> dict[str, Listen]:
        return {"pop3s": Listen(self.settings.pop3s_port, True), "pop3": Listen(self.settings.pop3_port, False)}

    def _limits(self) -> Limits:
        return Limits(
            max_connections=self.settings.pop3_max_connections,
            max_per_ip=self.settings.pop3_max_connections_per_ip,
            max_line=MAX_LINE,
        )

    async def _open(self) -> None:
        self.ctx = AppContext(self.settings)
        self.login_delay = LoginDelay(self.ctx.redis, self.policy.login_delay)

    async def _handle(self, conn: Connection) -> None:
        assert self.ctx is not None
        assert self.login_delay is not None
        await Pop3Session(conn, self.ctx, self.policy, self.login_delay).run()

    async def _close(self) -> None:
        if self.ctx is not None:
            await self.ctx.close()
            self.ctx = None
