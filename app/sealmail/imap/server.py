"""The ``imap`` component: listeners on 993 (implicit TLS) and 143 (STARTTLS), and the connection loop.

The loop reads one complete command at a time: a line, and while that line ends with a literal
announcement, the literal's octets and the next line. A literal's size is checked before a single
octet of it is read (RFC 7888 §4, RFC 7889 APPENDLIMIT), so no client can make the server buffer
more than the limits; synchronizing literals get their "+" continuation only once accepted. Before
login the limit is a few KB (``PRE_AUTH_LITERAL_MAX``): see ``read_command``.
Idle connections are closed: quickly before login, after the RFC 9051 §5.4 autologout after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sealmail.imap import parser
from sealmail.imap.caches import ImapCaches
from sealmail.imap.session import Options, Session
from sealmail.imap.states import LOGOUT, NOT_AUTHENTICATED
from sealmail.net.drain import IMAP_DRAINING
from sealmail.net.server import Connection, ConnectionClosed, LineComponent, LineTooLong, Listen, revoked_now
from sealmail.net.server import Limits as NetLimits
from sealmail.services.spamlearning import SpamLearner

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.settings import Settings

MAX_LINE = 64 * 1024
MAX_COMMAND = 1024 * 1024  # every command but APPEND: lines and literals together
# Before login a client has nothing bigger to send than a user name and a password (RFC 9051
# §6.2.3 LOGIN; SASL goes in lines, not literals), so a literal over this many octets — or a
# command whose literals add up to more — is refused unread: an anonymous peer cannot make the
# server hold its bytes.
PRE_AUTH_LITERAL_MAX = 8 * 1024


class Abandoned(Exception):
    """The client's command was refused before its literal was read; it was answered already."""


async def read_command(conn: Connection, session: Session) -> bytes:
    """One command with its literals, or raises Abandoned / LineTooLong / ConnectionClosed / TimeoutError.

    Every literal's size is judged from its announcement, before a single octet of it is read:

    * before authentication, a literal over ``PRE_AUTH_LITERAL_MAX`` (or one that brings the
      command's literals together over it) gets ``BAD [TOOBIG]``, whatever the command;
    * after it, APPEND is bounded by APPENDLIMIT and answered ``NO [TOOBIG]`` (RFC 7889 §4: an
      APPEND over the advertised limit is rejected with a tagged NO carrying the TOOBIG response
      code), every other command by ``MAX_COMMAND`` (``BAD [TOOBIG]``).

    A refused synchronizing literal gets no "+" continuation: RFC 9051 §4.3 and §7.5 let the server
    answer the command with a tagged response instead of the continuation request, and RFC 9051
    §7.1 defines the TOOBIG response code for a command or message too large to accept; the client
    then sends nothing, and the session goes on. A refused non-synchronizing literal is different: RFC 7888 §4
    has the client send its octets right behind the announcement without waiting, so the server
    cannot tell where the next command starts; it answers BAD (NO for APPEND), says BYE and closes.

    An accepted command is held as a list of pieces joined once, so at most about twice the limit
    above is in memory per connection.
    """
    timeout = session.timeout()
    line = await conn.readline(timeout)
    pieces = [line]
    total = len(line)
    literals = 0
    while (announced := parser.literal_announcement(line)) is not None:
        size, sync, _binary = announced
        head = pieces[0]
        name = parser.command_name(head)
        if session.state == NOT_AUTHENTICATED:
            too_big = literals + size > PRE_AUTH_LITERAL_MAX or total + size > MAX_LINE
            refusal = "BAD [TOOBIG] Literal too large before authentication"
        elif name == "APPEND":
            limit = session.options.append_limit
            too_big = size > limit or total + size > limit + MAX_LINE
            refusal = f"NO [TOOBIG] Message larger than APPENDLIMIT {limit}"
        else:
            too_big = total + size > MAX_COMMAND
            refusal = "BAD [TOOBIG] Literal too large"
        if too_big:
            tag = parser.read_tag(head) or "*"
            conn.write(f"{tag} {refusal}\r\n".encode())
            if not sync:
                # RFC 7888 §4: the octets of a non-synchronizing literal are already on their way and
                # will arrive whatever we answer; we will not read them, and without reading them we
                # cannot find where the next command starts, so the connection ends here.
                conn.write(b"* BYE Literal too large\r\n")
                await conn.flush()
                raise ConnectionClosed
            await conn.flush()
            raise Abandoned
        if sync:
            conn.write(b"+ Ready for literal data\r\n")
            await conn.flush()
        pieces.append(await conn.readexactly(size, timeout))
        line = await conn.readline(timeout)
        pieces.append(line)
        total += size + len(line)
        literals += size
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def serve_connection(ctx: AppContext, conn: Connection, options: Options) -> None:
    session = Session(ctx, conn, options, conn.log)
    try:
        session.greeting()
        await conn.flush()
        while session.state != LOGOUT:
            try:
                session.quiet = True
                try:
                    data = await read_command(conn, session)
                finally:
                    session.quiet = False
            except asyncio.CancelledError:
                if not revoked_now(session.revoked):
                    raise
                await _bye(conn, session)
                return
            except Abandoned:
                continue
            except LineTooLong:
                conn.write(b"* BAD Line too long\r\n")
                await conn.flush()
                continue
            except TimeoutError:
                conn.write(b"* BYE Autologout; idle for too long\r\n")
                with contextlib.suppress(ConnectionClosed):
                    await conn.flush()
                return
            try:
                await session.execute(data)
            except asyncio.CancelledError:  # revoked during IDLE
                if not revoked_now(session.revoked):
                    raise
            if session.revoked is not None:
                await _bye(conn, session)
                return
    finally:
        await session.close()


async def _bye(conn: Connection, session: Session) -> None:
    session.bye_revoked()
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        await conn.flush()


class ImapComponent(LineComponent):
    """``sealmail serve imap``: IMAPS and IMAP (STARTTLS) listeners over one AppContext."""

    name = "imap"
    title = "IMAP"
    refusal = b"* BYE [UNAVAILABLE] Too many connections; try again later\r\n"
    drain_reply = IMAP_DRAINING

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.ctx: AppContext | None = None
        self.options = Options(
            append_limit=settings.imap_append_limit,
            login_timeout=settings.imap_login_timeout,
            autologout=settings.imap_autologout,
            plaintext_login=settings.imap_plaintext_login,
            caches=ImapCaches(),  # one per process, shared by all its sessions
        )

    def _ports(self) -> dict[str, Listen]:
        return {"imaps": Listen(self.settings.imaps_port, True), "imap": Listen(self.settings.imap_port, False)}

    def _limits(self) -> NetLimits:
        return NetLimits(
            max_connections=self.settings.imap_max_connections,
            max_per_ip=self.settings.imap_max_connections_per_ip,
            max_line=MAX_LINE,
            write_deadline=self.settings.imap_write_deadline,
        )

    async def _open(self) -> None:
        from sealmail.appcontext import AppContext

        self.ctx = AppContext(self.settings)
        self.options.learner = SpamLearner.from_settings(self.settings, self.ctx.mailstore)

    async def _handle(self, conn: Connection) -> None:
        assert self.ctx is not None
        await serve_connection(self.ctx, conn, self.options)

    async def _close(self) -> None:
        if self.options.learner is not None:  # before the mailboxes close; unfinished jobs stay in them
            await self.options.learner.close()
            self.options.learner = None
        if self.ctx is not None:
            await self.ctx.close()
            self.ctx = None


def factory(settings: Settings) -> Any:
    return ImapComponent(settings)
