"""One POP3 connection: RFC 1939 with CAPA and response codes (RFC 2449, RFC 3206), STLS (RFC 2595),
SASL PLAIN (RFC 5034, RFC 4616) and UTF-8 mode (RFC 6856).

Protocol code only: it parses command lines, keeps the session's state and formats replies. Mail
comes from ``SessionMaildrop`` (which calls the store), sign-in from ``services.sessions``, and store
errors are translated here into ``-ERR`` replies.
"""

from __future__ import annotations

import asyncio
import binascii
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sealmail.net.limits import Refused
from sealmail.net.server import Connection, ConnectionClosed, LineTooLong
from sealmail.pop3 import wire
from sealmail.pop3.maildrop import (
    DeleteMode,
    MessageDeleted,
    MessageGone,
    NoSuchMessage,
    SessionMaildrop,
)
from sealmail.services import revocation
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.sessions import MailboxSession, guard, sign_in
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sealmail.appcontext import AppContext
    from sealmail.pop3.policy import LoginDelay
    from sealmail.store.contract import ExclusiveLease


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"


@dataclass(frozen=True, slots=True)
class Pop3Policy:
    """What the settings decide for every session (docs/protocols.md, "POP3")."""

    delete_mode: DeleteMode = "remove"
    expire_days: int | None = None  # None: EXPIRE NEVER
    login_delay: int = 0
    idle_timeout: float = 600.0

    @property
    def expire(self) -> str:
        return "NEVER" if self.expire_days is None else str(self.expire_days)


class Pop3Session:
    def __init__(self, conn: Connection, ctx: AppContext, policy: Pop3Policy, login_delay: LoginDelay) -> None:
        self.conn = conn
        self.ctx = ctx
        self.policy = policy
        self.login_delay = login_delay
        self.log = conn.log
        self.state = State.AUTHORIZATION
        self.utf8 = False
        self.pending_user: str | None = None
        self.session: MailboxSession | None = None
        self.lock: ExclusiveLease | None = None
        self.drop: SessionMaildrop | None = None
        self.done = False
        # Revocation (services.revocation): waiting for a command (``quiet``), the session's task is
        # cancelled and the connection closes without UPDATE (RFC 1939 §6: nothing marked is removed);
        # a command that arrives anyway is answered -ERR, then the connection closes.
        self.revoked: str | None = None
        self.quiet = False
        self._task: asyncio.Task[Any] | None = None
        self._watch: revocation.Watch | None = None
        self._commands: dict[str, tuple[Callable[[str], Awaitable[None]], frozenset[State]]] = {
            "CAPA": (self.cmd_capa, _ANY),
            "QUIT": (self.cmd_quit, _ANY),
            "STLS": (self.cmd_stls, _AUTH),
            "UTF8": (self.cmd_utf8, _AUTH),
            "USER": (self.cmd_user, _AUTH),
            "PASS": (self.cmd_pass, _AUTH),
            "AUTH": (self.cmd_auth, _AUTH),
            "STAT": (self.cmd_stat, _TRANS),
            "LIST": (self.cmd_list, _TRANS),
            "RETR": (self.cmd_retr, _TRANS),
            "DELE": (self.cmd_dele, _TRANS),
            "NOOP": (self.cmd_noop, _TRANS),
            "RSET": (self.cmd_rset, _TRANS),
            "TOP": (self.cmd_top, _TRANS),
            "UIDL": (self.cmd_uidl, _TRANS),
        }

    # ---- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.ok("Sealmail POP3 server ready")  # RFC 1939 §4: the greeting
            while not self.done:
                try:
                    self.quiet = True
                    try:
                        line = await self.conn.readline(self.policy.idle_timeout)
                    finally:
                        self.quiet = False
                except LineTooLong:
                    await self.err("Line too long")
                    continue
                await self.dispatch(line)
                if self.revoked is not None:
                    break
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.revoked is None or task is None:
                raise
            task.uncancel()
            if task.cancelling():
                raise
            self.log.info("closing: the account's credentials changed")
        except TimeoutError:
            # RFC 1939 §3: the autologout timer closes the connection without UPDATE or reply.
            self.log.info("idle timeout; closing without changes")
        finally:
            await self.release()

    async def dispatch(self, line: bytes) -> None:
        if self.revoked is not None:
            self.done = True
            await self.err("Signed out: this account's password or access changed", "AUTH")
            return
        text = _strip_eol(line)
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            await self.err("Commands must be UTF-8 (RFC 6856)")
            return
        keyword, _, argument = decoded.partition(" ")
        keyword = keyword.upper()
        entry = self._commands.get(keyword) if keyword.isascii() else None
        if entry is None:
            await self.err("Unknown command" if keyword else "Empty command")
            return
        handler, states = entry
        if self.state not in states:
            await self.err(f"{keyword} is not valid in the {self.state.value} state")
            return
        try:
            await handler(argument)
        except NoSuchMessage:
            await self.err("No such message")
        except MessageDeleted as exc:
            await self.err(f"Message {exc.args[0]} is deleted")
        except MessageGone as exc:
            await self.err(f"Message {exc.args[0]} was removed by another session")
        except (ConnectionClosed, TimeoutError):
            raise
        except StoreUnavailable:
            self.log.warning("%s: the mailbox store is unavailable", keyword)
            await self.err("Mailbox store unavailable; try again later", "SYS/TEMP")  # RFC 3206 §4
        except Exception:
            self.log.exception("%s failed", keyword)
            await self.err("Internal error; try again later", "SYS/TEMP")

    # ---- replies --------------------------------------------------------------------------------
    async def ok(self, text: str = "", body: bytes | None = None) -> None:
        line = (f"+OK {text}".rstrip() + "\r\n").encode()
        # One write: the status line and its body leave in the same TLS record and TCP segment.
        self.conn.write(line + body if body is not None else line)
        await self.conn.flush()

    async def err(self, text: str, code: str | None = None) -> None:
        """``-ERR`` with an extended response code (RFC 2449 §8) when one applies."""
        prefix = f"[{code}] " if code else ""
        await self.conn.send(f"-ERR {prefix}{text}\r\n".encode())

    async def lines(self, text: str, items: list[str]) -> None:
        """A multi-line response whose lines are protocol text (CAPA, LIST, UIDL)."""
        body = "".join(f"{item}\r\n" for item in items) + ".\r\n"
        await self.ok(text, body.encode())

    # ---- AUTHORIZATION state --------------------------------------------------------------------
    def capabilities(self) -> list[str]:
        """RFC 2449 §5-6; what depends on the state and on TLS is computed each time."""
        caps = [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",  # RFC 3206 §6
            "PIPELINING",
            f"EXPIRE {self.policy.expire}",
            f"LOGIN-DELAY {self.policy.login_delay}",
            "UTF8 USER",  # RFC 6856 §2: UTF-8 mode, and UTF-8 user names and passwords
        ]
        if self.conn.secure:
            caps += ["USER", "SASL PLAIN"]
        elif self.state is State.AUTHORIZATION and self.conn.can_starttls:
            # RFC 2595 §4 (and §2.2): no plaintext login is offered until TLS is on.
            caps.append("STLS")
        caps.append("IMPLEMENTATION Sealmail")
        return caps

    async def cmd_capa(self, argument: str) -> None:
        await self.lines("Capability list follows", self.capabilities())

    async def cmd_stls(self, argument: str) -> None:
        if self.conn.secure:
            await self.err("Command not permitted when TLS active")  # RFC 2595 §4
            return
        if not self.conn.can_starttls:
            await self.err("STLS is not available")
            return
        await self.conn.starttls(b"+OK Begin TLS negotiation\r\n")
        # RFC 2595 §4: the client forgets what it learnt before TLS; the server does likewise.
        self.pending_user = None
        self.utf8 = False
        self.log.info("TLS started")

    async def cmd_utf8(self, argument: str) -> None:
        # RFC 6856 §2: valid in the AUTHORIZATION state; messages are then sent without downgrading.
        self.utf8 = True
        await self.ok("UTF8 enabled")

    async def _refuse_plaintext(self) -> bool:
        if self.conn.secure:
            return False
        # RFC 2595 §2.2 / §4: refuse USER before PASS is ever sent in clear.
        await self.err("Plaintext authentication is disallowed before STLS", "AUTH")
        return True

    async def cmd_user(self, argument: str) -> None:
        if await self._refuse_plaintext():
            return
        name = argument.strip()
        if not name:
            await self.err("USER needs a name")
            return
        self.pending_user = name
        await self.ok("Send PASS")  # RFC 1939 §7: never tell whether the user exists

    async def cmd_pass(self, argument: str) -> None:
        if await self._refuse_plaintext():
            return
        if self.pending_user is None:
            await self.err("USER first")
            return
        # RFC 1939 §7: PASS has exactly one argument, so spaces belong to the password.
        user, self.pending_user = self.pending_user, None
        await self.login(user, argument)

    async def cmd_auth(self, argument: str) -> None:
        if await self._refuse_plaintext():
            return
        words = argument.split()
        if not words:
            # Not in RFC 5034, but clients (Outlook, fetchmail) probe mechanisms this way.
            await self.lines("Supported SASL mechanisms", ["PLAIN"])
            return
        if words[0].upper() != "PLAIN" or len(words) > 2:
            await self.err("Unsupported SASL mechanism")
            return
        response = words[1] if len(words) == 2 else await self._sasl_response()
        if response == "*":
            await self.err("Authentication cancelled")  # RFC 5034 §4
            return
        credentials = _plain(response) if response is not None else None
        if credentials is None:
            await self.err("Invalid SASL PLAIN response")
            return
        authzid, authcid, password = credentials
        if authzid and authzid != authcid:
            await self.err("Acting as another user is not supported", "AUTH")
            return
        await self.login(authcid, password)

    async def _sasl_response(self) -> str | None:
        await self.conn.send(b"+ \r\n")  # RFC 5034 §4: an empty challenge, then the client's response
        try:
            return _strip_eol(await self.conn.readline(self.policy.idle_timeout)).decode("ascii")
        except (LineTooLong, UnicodeDecodeError):
            return None

    async def login(self, account: str, password: str) -> None:
        """Sign in, lock the maildrop, take the snapshot: RFC 1939 §4 -> TRANSACTION."""
        ip = self.conn.peer_ip
        limiter = self.ctx.limiter
        attempt = await limiter.reserve(ip, account)
        if isinstance(attempt, Refused):
            self.log.warning("login refused: %s", attempt.reason)
            await self.err(f"{attempt.reason.capitalize()}; try again later", "SYS/TEMP")
            return
        try:
            session = await sign_in(self.ctx.logins, self.ctx.config, self.ctx.mailstore, account, password)
        except AuthenticationFailed:
            await attempt.failed()
            # Never the name typed: people type their password there by mistake. The peer is logged.
            self.log.info("login failed")
            await self.err("Authentication failed", "AUTH")  # RFC 3206 §4
            return
        except Exception as exc:
            await attempt.cancel()  # the server's trouble, not a wrong password
            if isinstance(exc, StoreUnavailable):
                self.log.warning("login: the mailbox store is unavailable")
            else:
                self.log.exception("opening the mailbox failed")
            await self.err("Cannot open the maildrop now", "SYS/TEMP")  # RFC 3206 §4
            return
        self.session = session  # from here on, release() lets go of it whatever happens
        await attempt.succeeded()
        log = self.log.bind(user=session.address)
        if not await self._lock(session, log):
            return
        refusal = await self._admit(session)
        if refusal is not None:
            await self.release()
            log.info("login refused: %s", refusal[1])
            await self.err(*refusal)
            return
        try:
            drop = await SessionMaildrop.load(session.mailbox, utf8=self.utf8)
        except Exception:
            await self.release()
            log.exception("listing the maildrop failed")
            await self.err("Cannot open the maildrop now", "SYS/TEMP")
            return
        self.drop, self.log = drop, log
        self.state = State.TRANSACTION
        count, size = drop.stat()
        log.info("logged in; %d messages", count)
        await self.ok(f"Maildrop has {count} messages ({size} octets)")

    async def _admit(self, session: MailboxSession) -> tuple[str, str] | None:
        """After the password: LOGIN-DELAY, then the watch for revocations; (text, code) when refused."""
        if not await self.login_delay.admit(session.unlocked.alias.id):
            return f"Log in at most every {self.policy.login_delay} seconds", "LOGIN-DELAY"
        self._task = asyncio.current_task()
        self._watch = await guard(self.ctx.revocations, self.ctx.config, session.unlocked.credential, self._on_revoked)
        if self._watch is None:  # the credentials changed while this login was checked
            return "Authentication failed", "AUTH"  # RFC 3206 §4
        return None

    # ---- TRANSACTION state ----------------------------------------------------------------------
    @property
    def maildrop(self) -> SessionMaildrop:
        assert self.drop is not None
        return self.drop

    def _number(self, text: str) -> int:
        number = wire.message_number(text)
        if number is None:
            raise NoSuchMessage(text)
        return number

    def _arguments(self, argument: str, low: int, high: int) -> list[str] | None:
        words = argument.split()
        return words if low <= len(words) <= high else None

    async def cmd_stat(self, argument: str) -> None:
        count, size = self.maildrop.stat()
        await self.ok(f"{count} {size}")  # RFC 1939 §5: exactly "count size"

    async def cmd_list(self, argument: str) -> None:
        words = self._arguments(argument, 0, 1)
        if words is None:
            await self.err("Usage: LIST [message]")
        elif words:
            message = self.maildrop.get(self._number(words[0]))
            await self.ok(f"{message.number} {message.size}")
        else:
            count, size = self.maildrop.stat()
            live = self.maildrop.live()
            await self.lines(f"{count} messages ({size} octets)", [f"{m.number} {m.size}" for m in live])

    async def cmd_uidl(self, argument: str) -> None:
        words = self._arguments(argument, 0, 1)
        drop = self.maildrop
        if words is None:
            await self.err("Usage: UIDL [message]")
        elif words:
            message = drop.get(self._number(words[0]))
            await self.ok(f"{message.number} {drop.unique_id(message)}")
        else:
            await self.lines("Unique-ID listing follows", [f"{m.number} {drop.unique_id(m)}" for m in drop.live()])

    async def cmd_retr(self, argument: str) -> None:
        words = self._arguments(argument, 1, 1)
        if words is None:
            await self.err("Usage: RETR message")
            return
        message = self.maildrop.get(self._number(words[0]))
        data = await self.maildrop.content(message)
        self.maildrop.retrieved.add(message.number)
        await self.ok(f"{len(data)} octets", wire.multiline(data))

    async def cmd_top(self, argument: str) -> None:
        words = self._arguments(argument, 2, 2)
        count = wire.message_number(words[1]) if words else None
        if words is None or count is None:
            await self.err("Usage: TOP message lines")
            return
        message = self.maildrop.get(self._number(words[0]))
        header, body = wire.header_and_body(await self.maildrop.content(message))
        # RFC 1939 §7: the header, the blank line, then ``count`` lines of the body.
        await self.ok("Top of message follows", wire.multiline(header + wire.first_lines(body, count)))

    async def cmd_dele(self, argument: str) -> None:
        words = self._arguments(argument, 1, 1)
        if words is None:
            await self.err("Usage: DELE message")
            return
        number = self._number(words[0])
        self.maildrop.delete(number)
        await self.ok(f"Message {number} deleted")

    async def cmd_noop(self, argument: str) -> None:
        await self.ok()

    async def cmd_rset(self, argument: str) -> None:
        self.maildrop.reset()
        count, size = self.maildrop.stat()
        await self.ok(f"Maildrop has {count} messages ({size} octets)")

    async def cmd_quit(self, argument: str) -> None:
        self.done = True
        if self.state is State.AUTHORIZATION:
            await self.ok("Sealmail POP3 server signing off")
            return
        # RFC 1939 §6: the UPDATE state; only here does the mailbox change.
        try:
            result = await self.maildrop.commit(self.policy.delete_mode, self.policy.expire_days)
        except Exception:
            self.log.exception("UPDATE failed; nothing was removed")
            await self.err("Some deleted messages not removed", "SYS/TEMP")
            return
        self.log.info("update: %d removed, %d left", result.removed, result.left)
        await self.ok(f"Sealmail POP3 server signing off ({result.left} messages left)")

    # ---- end ------------------------------------------------------------------------------------
    def _on_revoked(self, event: revocation.Revoked) -> None:
        if self.revoked is not None:
            return
        self.revoked = event.reason
        if self.quiet and self._task is not None:
            self._task.cancel()

    async def _lock(self, session: MailboxSession, log: Any) -> bool:
        """The exclusive maildrop lock (RFC 1939 §8), from the store: it holds on every front-end."""
        try:
            self.lock = await self.ctx.mailstore.lock_maildrop(session.mailbox)
        except StoreUnavailable:
            await self.release()
            log.warning("login: the mailbox store is unavailable")
            await self.err("Cannot open the maildrop now", "SYS/TEMP")  # RFC 3206 §4
            return False
        if self.lock is None:
            await self.release()
            log.info("maildrop in use")
            await self.err("Maildrop is in use by another POP3 session", "IN-USE")  # RFC 2449 §8.1.2
            return False
        return True

    async def release(self) -> None:
        """Let go of the maildrop lock and the mailbox (after QUIT, a drop, a timeout or a stop)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.lock is not None:
            lock, self.lock = self.lock, None
            try:
                await lock.release()
            except Exception:
                self.log.exception("releasing the maildrop lock failed")
        if self.session is not None:
            session, self.session = self.session, None
            try:
                await session.close()
            except Exception:
                self.log.exception("closing the mailbox failed")


_ANY = frozenset(State)
_AUTH = frozenset({State.AUTHORIZATION})
_TRANS = frozenset({State.TRANSACTION})


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def _plain(response: str) -> tuple[str, str, str] | None:
    """RFC 4616 §2: ``[authzid] NUL authcid NUL passwd`` in base64 (``=`` is an empty response)."""
    if response == "=":
        return None
    try:
        decoded = binascii.a2b_base64(response.encode("ascii"), strict_mode=True)
        parts = decoded.decode("utf-8").split("\0")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]
