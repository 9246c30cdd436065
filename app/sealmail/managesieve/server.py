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
from sealmail.net.drain import MANAGESIEVE_DRAINING, DrainFlag
from sealmail.net.listen import close_all, listen_ports
from sealmail.net.server import Connection, ConnectionClosed, LineServer, LineTooLong
from sealmail.net.server import Limits as NetLimits
from sealmail.net.tls import ServerTLS, TLSUnavailable
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
                if not _revoked_now(session):
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


def _revoked_now(session: Session) -> bool:
    """A cancellation that is the session's revocation (not the server stopping): swallow it."""
    task = asyncio.current_task()
    if session.revoked is None or task is None:
        return False
    task.uncancel()
    return task.cancelling() == 0


async def _bye(saying: Any) -> None:
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        await saying


class ManageSieveComponent:
    """``sealmail serve managesieve``: one listener (STARTTLS) over one AppContext."""

    def __init__(self, settings: Settings, ctx: AppContext | None = None) -> None:
        self.settings = settings
        self.ctx = ctx
        self._own_ctx = ctx is None
        self.server: LineServer | None = None
        self.options = Options(
            login_timeout=settings.managesieve_login_timeout,
            autologout=settings.managesieve_autologout,
            loopback_plaintext=settings.managesieve_loopback_plaintext,
            scram=scramlogin.mechanisms(settings),
        )

    async def start(self) -> dict[str, int]:
        from sealmail.appcontext import AppContext

        try:
            # RFC 5804 §1.7: STARTTLS is advertised only where TLS can really be negotiated.
            tls = ServerTLS.from_settings(self.settings, alpn=ALPN)
        except TLSUnavailable as exc:
            raise TLSUnavailable(f"ManageSieve needs a certificate: {exc}") from None
        if self.ctx is None:
            self.ctx = AppContext(self.settings)
        limits = NetLimits(
            max_connections=self.settings.managesieve_max_connections,
            max_per_ip=self.settings.managesieve_max_connections_per_ip,
            max_line=MAX_LINE,
        )
        self.server = LineServer("managesieve", self._handle, self._refuse, limits, tls)
        self.server.draining, self.server.drain_reply = DrainFlag(self.settings.run_dir), MANAGESIEVE_DRAINING
        bound = listen_ports(self.settings, {"managesieve": self.settings.managesieve_port})
        try:
            return {"managesieve": await self.server.listen(bound.pop("managesieve"), implicit_tls=False)}
        finally:
            close_all(s for group in bound.values() for s in group)

    async def _handle(self, conn: Connection) -> None:
        assert self.ctx is not None
        await serve_connection(self.ctx, conn, self.options)

    async def _refuse(self, conn: Connection) -> None:
        await conn.send(b'BYE (TRYLATER) "Too many connections; try again later"\r\n')

    @property
    def sessions(self) -> int:
        """Connections open now (``sealmail status``: how far a drain has come)."""
        return self.server.sessions if self.server is not None else 0

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None
        if self.ctx is not None and self._own_ctx:
            await self.ctx.close()
            self.ctx = None
