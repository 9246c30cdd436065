"""The ``managesieve`` component: ManageSieve (RFC 5804) with STARTTLS on port 4190, one process.

``sealmail serve managesieve`` runs it; ``sealmail dev`` starts it too (``ports.managesieve``). The
connection loop reads one command at a time (``reader``: literals judged before they are read) and
hands it to the session. It says ``BYE`` and hangs up (RFC 5804 §1.2) on a line or literal over the
limits, after too many malformed commands or failed logins, on an idle client (quickly before
authentication, after ``managesieve_autologout`` after it), and when the account's credentials
change; other connections are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sealmail.managesieve import parser
from sealmail.managesieve.reader import MAX_LINE, TooLarge, read_command
from sealmail.managesieve.session import Options, Session, State
from sealmail.net.drain import MANAGESIEVE_DRAINING
from sealmail.net.server import Connection, ConnectionClosed, LineComponent, LineTooLong, Listen, revoked_now
from sealmail.net.server import Limits as NetLimits
from sealmail.services import scramlogin

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.settings import Settings

ALPN = ("managesieve",)  # the IANA ALPN protocol ID of ManageSieve


async def serve_connection(ctx: AppContext, conn: Connection, options: Options) -> None:
    session = Session(ctx, conn, options, conn.log)
    try:
        await session.greet()
        while session.state is not State.LOGOUT:
            try:
                session.quiet = True
                try:
                    reader = await read_command(conn, authenticated=session.authenticated, timeout=session.timeout())
                finally:
                    session.quiet = False
                # A command may read more (AUTHENTICATE's SASL response): the same limits apply.
                await session.run(reader.command())
            except asyncio.CancelledError:
                if not revoked_now(session.revoked):
                    raise
                await _bye(session.bye_revoked())
                return
            except parser.ParseError as exc:
                await session.malformed(exc)
                continue
            except TooLarge as exc:
                await session.refused(exc)
                continue
            except LineTooLong:
                await _bye(session.bye("Line too long"))
                return
            except TimeoutError:
                conn.log.info("idle timeout")
                await _bye(session.bye("Idle for too long; closing"))
                return
            if session.revoked is not None:
                await _bye(session.bye_revoked())
                return
    finally:
        await session.close()


async def _bye(saying: Any) -> None:
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        await saying


class ManageSieveComponent(LineComponent):
    """``sealmail serve managesieve``: one listener (STARTTLS) over one AppContext."""

    name = "managesieve"
    title = "ManageSieve"
    refusal = b'BYE (TRYLATER) "Too many connections; try again later"\r\n'
    drain_reply = MANAGESIEVE_DRAINING
    # RFC 5804 §1.7: STARTTLS is advertised only where TLS can really be negotiated (``start``
    # refuses to run without a certificate).
    alpn = ALPN

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.ctx: AppContext | None = None
        self.options = Options(
            login_timeout=settings.managesieve_login_timeout,
            autologout=settings.managesieve_autologout,
            loopback_plaintext=settings.managesieve_loopback_plaintext,
            scram=scramlogin.mechanisms(settings),
        )

    def _ports(self) -> dict[str, Listen]:
        return {"managesieve": Listen(self.settings.managesieve_port, False)}

    def _limits(self) -> NetLimits:
        return NetLimits(
            max_connections=self.settings.managesieve_max_connections,
            max_per_ip=self.settings.managesieve_max_connections_per_ip,
            max_line=MAX_LINE,
        )

    async def _open(self) -> None:
        from sealmail.appcontext import AppContext

        self.ctx = AppContext(self.settings)

    async def _handle(self, conn: Connection) -> None:
        assert self.ctx is not None
        await serve_connection(self.ctx, conn, self.options)

    async def _close(self) -> None:
        if self.ctx is not None:
            await self.ctx.close()
            self.ctx = None
