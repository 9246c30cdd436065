"""One ManageSieve session: the state machine of RFC 5804 §2 over an alias's Sieve scripts.

Non-authenticated: CAPABILITY, LOGOUT, NOOP, STARTTLS, AUTHENTICATE (SASL PLAIN, and SCRAM-SHA-1 and
SCRAM-SHA-256 against the alias's stored SCRAM verifiers, ``services.scramlogin``; each with an initial
response or after an empty challenge). Authenticated: the script commands and UNAUTHENTICATE,
which returns to non-authenticated (RFC 5804 §2.14.1). Any other command gets ``NO`` (§2).

The password is checked as IMAP's is (``services.logins``: the Argon2id verifier, the shared
failed-login limits, the same log lines; SCRAM's proof counts against the same limits); no mailbox is opened, because scripts live in the config
store. A script is compiled before it is stored (``services.sievescripts``: §2.6, §2.12), and the
session turns the store's errors into response codes: ``NotFound`` -> ``NONEXISTENT``,
``AlreadyExists`` -> ``ALREADYEXISTS``, ``ScriptActive`` -> ``ACTIVE``, ``ScriptQuotaExceeded`` ->
``QUOTA/MAXSCRIPTS`` or ``QUOTA/MAXSIZE``, ``StoreUnavailable`` -> ``TRYLATER``. Script content and
passwords are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sealmail import __version__
from sealmail.config.models import MAX_SIEVE_SCRIPT_BYTES, MAX_SIEVE_SCRIPTS, check_sieve_name
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, ScriptActive, ScriptQuotaExceeded
from sealmail.managesieve import parser as p
from sealmail.managesieve import wire
from sealmail.managesieve.reader import TooLarge, read_command
from sealmail.net.limits import Refused
from sealmail.net.server import ConnectionClosed, LineTooLong, LineTransport
from sealmail.services import revocation, scramlogin, sievescripts
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.sessions import guard
from sealmail.sieve import actions, grammar
from sealmail.sieve.errors import SieveError
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.config.models import Alias, AliasCredential

log = logging.getLogger("sealmail.managesieve")

MAX_BAD_COMMANDS = 20  # commands in a row that could not be parsed, then BYE
MAX_AUTH_FAILURES = 3  # failed AUTHENTICATEs in one connection, then BYE (RFC 5804 §2.1's example)
# SASL mechanisms site policy forbids outright (RFC 5804 §1.3 AUTH-TOO-WEAK): no anonymous access,
# and nothing that needs the password kept in a reversible form (only an Argon2id verifier is kept).
TOO_WEAK = frozenset({"ANONYMOUS", "CRAM-MD5", "DIGEST-MD5"})


class State(enum.Enum):
    NOT_AUTHENTICATED = "non-authenticated"
    AUTHENTICATED = "authenticated"
    LOGOUT = "logout"


class Transport(LineTransport, Protocol):
    """What a ManageSieve session needs from its connection: a line transport that reads literals by size."""

    async def readexactly(self, count: int, timeout: float | None = None) -> bytes: ...


@dataclass(slots=True)
class Options:
    """Per-process policy from the settings (``managesieve_*``)."""

    login_timeout: float = 60.0
    autologout: float = 1800.0
    loopback_plaintext: bool = False  # AUTHENTICATE without TLS from a loopback peer (a webmail on this host)
    scram: tuple[str, ...] = ()  # SCRAM mechanisms offered beside PLAIN (settings.managesieve_scram)


class Reply(Exception):
    """A handler's final answer other than a plain ``OK``."""

    def __init__(self, status: str, text: str | None = None, code: str | bytes | None = None) -> None:
        super().__init__(text or status)
        self.status, self.text, self.code = status, text, code


Handler = Callable[["Session", Any], Awaitable[None]]


class Session:
    def __init__(self, ctx: AppContext, conn: Transport, options: Options | None = None, logger: Any = None) -> None:
        self.ctx = ctx
        self.conn = conn
        self.options = options or Options()
        self.log = logger or logging.LoggerAdapter(log, {})
        self._anonymous_log = self.log
        self.state = State.NOT_AUTHENTICATED
        self.alias: Alias | None = None
        self.owner = ""
        self.bad_commands = 0
        self.auth_failures = 0
        # Revocation (services.revocation): while the session waits for a command (``quiet``) its task
        # is cancelled and the server says BYE; during a command the BYE follows the command's answer.
        self.revoked: str | None = None
        self.quiet = False
        self._task: asyncio.Task[Any] | None = None
        self._watch: revocation.Watch | None = None

    # ---- what the server asks ---------------------------------------------------------------------
    @property
    def authenticated(self) -> bool:
        return self.state is State.AUTHENTICATED

    def timeout(self) -> float:
        # RFC 5804 §1.2: at least 30 minutes after authentication; less before it.
        return self.options.autologout if self.authenticated else self.options.login_timeout

    def plaintext_allowed(self) -> bool:
        """PLAIN needs TLS (RFC 5804 §2.1.1, §5), unless the peer is this host and the settings allow it.
        SCRAM waits for TLS too: the scripts that follow the login are private."""
        return self.conn.secure or (self.options.loopback_plaintext and _is_loopback(self.conn.peer_ip))

    def mechanisms(self) -> tuple[str, ...]:
        return ("PLAIN", *self.options.scram)

    def capabilities(self) -> bytes:
        """RFC 5804 §1.7, computed for the state and TLS of this moment."""
        lines = [
            wire.capability("IMPLEMENTATION", f"Sealmail {__version__}"),
            # Empty only while STARTTLS is offered: §1.7 allows that and nothing else.
            wire.capability("SASL", " ".join(self.mechanisms()) if self.plaintext_allowed() else ""),
            wire.capability("SIEVE", " ".join(grammar.CAPABILITIES)),  # what the compiler accepts
            wire.capability("MAXREDIRECTS", str(actions.MAX_REDIRECTS)),
            wire.capability("VERSION", "1.0"),
            wire.capability("UNAUTHENTICATE"),
        ]
        if self.state is State.NOT_AUTHENTICATED and self.conn.can_starttls:
            lines.append(wire.capability("STARTTLS"))  # §1.7: not after STARTTLS or AUTHENTICATE
        if self.authenticated:
            lines.append(wire.capability("OWNER", self.owner))  # §1.7: only once authenticated
        return b"".join(lines)

    async def greet(self) -> None:
        """§1.7: the capabilities go out as soon as the client connects."""
        self.conn.write(self.capabilities() + wire.response("OK", "Sealmail ManageSieve ready"))
        await self.conn.flush()

    async def bye(self, text: str, code: str | None = None) -> None:
        """§1.2: BYE, then the server hangs up."""
        self.state = State.LOGOUT
        self.conn.write(wire.response("BYE", text, code))
        await self.conn.flush()

    async def malformed(self, exc: p.ParseError) -> None:
        self.bad_commands += 1
        self.conn.write(wire.response("NO", exc.message))
        if self.bad_commands >= MAX_BAD_COMMANDS:
            await self.bye("Too many invalid commands")
            return
        await self.conn.flush()

    async def refused(self, exc: TooLarge) -> None:
        self.conn.write(exc.reply)
        if exc.close:
            self.state = State.LOGOUT
        await self.conn.flush()

    # ---- running one command ------------------------------------------------------------------
    async def run(self, command: p.Command) -> None:
        self.bad_commands = 0
        handler = self._handler(command.name)
        try:
            if handler is None:
                raise Reply("NO", f"{command.name} is not valid in the {self.state.value} state")
            await handler(self, command)
            status, text, code = "OK", None, None
        except Reply as reply:
            status, text, code = reply.status, reply.text, reply.code
        except SieveError as exc:
            # RFC 5804 §2.6 / §2.12: human readable, naming the line of the first error.
            status, text, code = "NO", str(exc), None
        except ScriptActive:
            status, text, code = "NO", "The active script cannot be deleted; make another one active first", "ACTIVE"
        except NotFound:
            status, text, code = "NO", "There is no script by that name", "NONEXISTENT"
        except AlreadyExists:
            status, text, code = "NO", "A script by that name exists already", "ALREADYEXISTS"
        except ScriptQuotaExceeded as exc:
            status, text, code = "NO", str(exc), _quota_code(exc)
        except InvalidInput as exc:
            status, text, code = "NO", str(exc), None
        except StoreUnavailable:
            self.log.warning("%s: the config store is unavailable", command.name)
            status, text, code = "NO", "The script store is unavailable; try again later", "TRYLATER"
        except (ConnectionClosed, LineTooLong, TooLarge, TimeoutError, asyncio.CancelledError):
            raise
        except Exception:
            self.log.exception("%s failed", command.name)
            status, text, code = "NO", "Internal error; try again later", "TRYLATER"
        if status == "BYE":
            self.state = State.LOGOUT  # §1.2: the server hangs up after BYE
        self.conn.write(wire.response(status, text, code))
        await self.conn.flush()

    def _handler(self, name: str) -> Handler | None:
        found = _ANY_STATE.get(name)
        if found is None:
            table = _AUTHENTICATED if self.authenticated else _NOT_AUTHENTICATED
            found = table.get(name)
        return found

    # ---- any state ------------------------------------------------------------------------------
    async def cmd_capability(self, c: p.Command) -> None:
        self.conn.write(self.capabilities())

    async def cmd_logout(self, c: p.Command) -> None:
        # §2.3: OK, then the connection closes and later commands are ignored.
        self.state = State.LOGOUT
        raise Reply("OK", "Logout completed")

    async def cmd_noop(self, c: p.Noop) -> None:
        # §2.13: always OK; the TAG response code only when a string was given.
        if c.tag is None:
            raise Reply("OK", "NOOP completed")
        raise Reply("OK", "Done", wire.tag_code(c.tag))

    # ---- non-authenticated ----------------------------------------------------------------------
    async def cmd_starttls(self, c: p.Command) -> None:
        if not self.conn.can_starttls:
            raise Reply("NO", "TLS is active already" if self.conn.secure else "STARTTLS is not offered here")
        # The OK goes out with reading paused, so the ClientHello is read by TLS, and whatever the client
        # pipelined in clear after STARTTLS is dropped (CVE-2011-0411).
        await self.conn.starttls(wire.response("OK", "Begin TLS negotiation now"))
        self.log.info("TLS started")
        # §2.2: the capabilities again, without STARTTLS, then OK.
        self.conn.write(self.capabilities())
        raise Reply("OK", "TLS negotiation successful")

    async def cmd_authenticate(self, c: p.Authenticate) -> None:
        mechanism = c.mechanism
        if mechanism in TOO_WEAK:
            raise Reply("NO", f"{mechanism} is not allowed here; use PLAIN over TLS", "AUTH-TOO-WEAK")
        if mechanism not in self.mechanisms():
            raise Reply("NO", f"Unsupported SASL mechanism {mechanism[:40]}")
        if not self.plaintext_allowed():
            # §1.3 ENCRYPT-NEEDED; the same for every identity, so it tells nothing about the account (§5).
            raise Reply("NO", "Use STARTTLS before authenticating", "ENCRYPT-NEEDED")
        # §2.1: a mechanism without an initial response starts with an empty challenge.
        response = c.initial if c.initial is not None else await self._sasl_step(b"")
        if response == b"*":
            raise Reply("NO", "Authentication cancelled")  # §2.1: MUST reject with NO
        if mechanism == "PLAIN":
            credentials = _plain(response)
            if credentials is None:
                raise Reply("NO", "Invalid SASL PLAIN response (RFC 4616 §2)")
            authzid, authcid, password = credentials
            if authzid and authzid != authcid:
                raise Reply("NO", "Acting as another user is not supported")
            await self._sign_in(authcid, password)
        else:
            await self._scram(mechanism, response)

    async def _sasl_step(self, challenge: bytes) -> bytes:
        """Send one server challenge (base64 in a string, §2.1) and read the client's answer string."""
        self.conn.write(wire.string(base64.b64encode(challenge)) + b"\r\n")
        await self.conn.flush()
        try:
            reader = await read_command(self.conn, authenticated=False, timeout=self.timeout())
            return reader.response()
        except p.ParseError as exc:
            raise Reply("NO", exc.message) from None

    async def _scram(self, mechanism: str, response: bytes) -> None:
        """RFC 5802 §3 inside RFC 5804 §2.1: client-first, server-first, client-final, and the
        server-final in the ``SASL`` response code of the ``OK``."""
        exchange = scramlogin.Exchange(self.ctx.config, self.ctx.settings, mechanism)
        try:
            server_first = await asyncio.to_thread(exchange.first, _scram_text(response))
        except scramlogin.BadMessage as exc:
            raise Reply("NO", f"Invalid {mechanism} message: {exc}"[:200]) from None
        except StoreUnavailable:
            self.log.warning("login: the config store is unavailable")
            raise Reply("NO", "The account store is unavailable; try again later", "TRYLATER") from None
        attempt = await self.ctx.limiter.reserve(self.conn.peer_ip, exchange.address)
        if isinstance(attempt, Refused):
            self.log.warning("login refused: %s", attempt.reason)
            raise Reply("NO", f"{attempt.reason.capitalize()}; try again later", "TRYLATER")
        try:
            answer = await self._sasl_step(server_first.encode("utf-8"))
            if answer == b"*":
                raise Reply("NO", "Authentication cancelled")
            verified = await asyncio.to_thread(exchange.final, _scram_text(answer))
        except AuthenticationFailed:
            await attempt.failed()
            self.log.info("login failed (%s)", mechanism)
            await self._failed()
            return
        except scramlogin.BadMessage as exc:
            await attempt.cancel()
            raise Reply("NO", f"Invalid {mechanism} message: {exc}"[:200]) from None
        except BaseException:
            await attempt.cancel()
            raise
        await attempt.succeeded()
        final = base64.b64encode(verified.server_final.encode("utf-8"))
        await self._signed_in(verified.alias, verified.credential, b"SASL " + wire.string(final))

    async def _sign_in(self, address: str, password: str) -> None:
        attempt = await self.ctx.limiter.reserve(self.conn.peer_ip, address)
        if isinstance(attempt, Refused):
            self.log.warning("login refused: %s", attempt.reason)
            raise Reply("NO", f"{attempt.reason.capitalize()}; try again later", "TRYLATER")
        try:
            alias, credential = await self.ctx.logins.check(self.ctx.config, address, password)
        except AuthenticationFailed:
            await attempt.failed()
            # Never the name typed: people type their password there by mistake. The peer is logged.
            self.log.info("login failed")
            await self._failed()
            return
        except StoreUnavailable:
            await attempt.cancel()  # the server's trouble, not a wrong password
            self.log.warning("login: the config store is unavailable")
            raise Reply("NO", "The account store is unavailable; try again later", "TRYLATER") from None
        except Exception:
            await attempt.cancel()
            raise
        await attempt.succeeded()
        await self._signed_in(alias, credential)

    async def _signed_in(self, alias: Alias, credential: AliasCredential, code: bytes | None = None) -> None:
        self._task = asyncio.current_task()
        watch = await guard(self.ctx.revocations, self.ctx.config, credential, self._on_revoked, needs_mailbox=False)
        if watch is None:  # the credentials changed while this login was checked
            await self._failed()
            return
        self._watch = watch
        self.alias = alias
        self.owner = f"{alias.name}@{alias.domain}"
        self.state = State.AUTHENTICATED
        self.log = _bind(self._anonymous_log, user=self.owner)
        self.log.info("logged in")
        # §4 response-authenticate: capabilities only after a SASL security layer, which neither
        # mechanism has; SCRAM's server-final-message rides in the SASL code (§2.1).
        raise Reply("OK", "Logged in", code)

    async def _failed(self) -> None:
        self.auth_failures += 1
        if self.auth_failures >= MAX_AUTH_FAILURES:
            raise Reply("BYE", "Too many failed authentication attempts")
        raise Reply("NO", "Authentication failed")

    # ---- authenticated --------------------------------------------------------------------------
    @property
    def alias_id(self) -> str:
        assert self.alias is not None
        return self.alias.id

    async def _config(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.ctx.config_call(fn, *args)

    async def cmd_unauthenticate(self, c: p.Command) -> None:
        # §2.14.1: back to non-authenticated; TLS stays; never fails in the authenticated state.
        self.end_authentication()
        self.log.info("unauthenticated")
        self.log = self._anonymous_log

    def end_authentication(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.alias, self.owner = None, ""
        if self.state is State.AUTHENTICATED:
            self.state = State.NOT_AUTHENTICATED

    async def cmd_havespace(self, c: p.HaveSpace) -> None:
        # §2.5: would PUTSCRIPT of this name and size fit? The same limits the store applies.
        if c.size > MAX_SIEVE_SCRIPT_BYTES:
            raise Reply("NO", f"Scripts are limited to {MAX_SIEVE_SCRIPT_BYTES} octets", "QUOTA/MAXSIZE")
        check_sieve_name(c.script)
        scripts = await self._config(self.ctx.config.list_sieve_scripts, self.alias_id)
        if all(s.name != c.script for s in scripts) and len(scripts) >= MAX_SIEVE_SCRIPTS:
            raise Reply("NO", f"At most {MAX_SIEVE_SCRIPTS} scripts per address", "QUOTA/MAXSCRIPTS")

    async def cmd_putscript(self, c: p.PutScript) -> None:
        if not c.content:
            raise Reply("NO", "An empty script is not stored (RFC 5804 §2.6)")
        _, found = await self._config(
            sievescripts.save_with_warnings, self.ctx.config, self.alias_id, c.script, c.content
        )
        self.log.info("script stored (%d octets)", len(c.content.encode("utf-8")))
        _warn(found)

    async def cmd_checkscript(self, c: p.CheckScript) -> None:
        _warn(await asyncio.to_thread(sievescripts.check, c.content))

    async def cmd_listscripts(self, c: p.Command) -> None:
        scripts = await self._config(self.ctx.config.list_sieve_scripts, self.alias_id)
        # §2.7: one name per line, ACTIVE after the active one.
        self.conn.write(b"".join(wire.string(s.name) + (b" ACTIVE" if s.active else b"") + b"\r\n" for s in scripts))

    async def cmd_setactive(self, c: p.Named) -> None:
        # §2.8: "" leaves no script active, and is OK when none was.
        await self._config(self.ctx.config.activate_sieve_script, self.alias_id, c.script or None)
        self.log.info("active script %s", "changed" if c.script else "none")

    async def cmd_getscript(self, c: p.Named) -> None:
        script = await self._config(self.ctx.config.get_sieve_script, self.alias_id, c.script)
        if script is None:
            raise NotFound(c.script)
        self.conn.write(wire.literal(script.content.encode("utf-8")) + b"\r\n")  # §2.9

    async def cmd_deletescript(self, c: p.Named) -> None:
        await self._config(self.ctx.config.delete_sieve_script, self.alias_id, c.script)
        self.log.info("script deleted")

    async def cmd_renamescript(self, c: p.RenameScript) -> None:
        # §2.11: the active script stays active under its new name.
        await self._config(self.ctx.config.rename_sieve_script, self.alias_id, c.old, c.new)
        self.log.info("script renamed")

    # ---- end ------------------------------------------------------------------------------------
    def _on_revoked(self, event: revocation.Revoked) -> None:
        if self.revoked is not None:
            return
        self.revoked = event.reason
        self.log.info("session ends: the account's credentials changed (%s)", event.reason)
        if self.quiet and self._task is not None:
            self._task.cancel()

    async def bye_revoked(self) -> None:
        await self.bye("Signed out: this account's password or access changed")

    async def close(self) -> None:
        self.end_authentication()


_ANY_STATE: dict[str, Handler] = {
    "CAPABILITY": Session.cmd_capability,
    "LOGOUT": Session.cmd_logout,
    "NOOP": Session.cmd_noop,
}
_NOT_AUTHENTICATED: dict[str, Handler] = {
    "STARTTLS": Session.cmd_starttls,
    "AUTHENTICATE": Session.cmd_authenticate,
}
_AUTHENTICATED: dict[str, Handler] = {
    "UNAUTHENTICATE": Session.cmd_unauthenticate,
    "HAVESPACE": Session.cmd_havespace,
    "PUTSCRIPT": Session.cmd_putscript,
    "CHECKSCRIPT": Session.cmd_checkscript,
    "LISTSCRIPTS": Session.cmd_listscripts,
    "SETACTIVE": Session.cmd_setactive,
    "GETSCRIPT": Session.cmd_getscript,
    "DELETESCRIPT": Session.cmd_deletescript,
    "RENAMESCRIPT": Session.cmd_renamescript,
}


def _warn(found: list[str]) -> None:
    """§2.6, §2.12: OK (WARNINGS) with each warning on its own line (a literal when there are several)."""
    if found:
        raise Reply("OK", "\r\n".join(found), "WARNINGS")


def _quota_code(exc: ScriptQuotaExceeded) -> str:
    return f"QUOTA/{exc.limit.upper()}" if exc.limit in ("maxscripts", "maxsize") else "QUOTA"


def _is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def _plain(response: bytes) -> tuple[str, str, str] | None:
    """RFC 4616 §2: base64 of ``[authzid] NUL authcid NUL passwd``."""
    try:
        decoded = binascii.a2b_base64(response, strict_mode=True)
        parts = decoded.decode("utf-8").split("\0")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]


def _scram_text(response: bytes) -> str:
    """A SCRAM message from the client's base64 string (RFC 5802 §7: UTF-8 text)."""
    try:
        return binascii.a2b_base64(response, strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise Reply("NO", "Invalid SASL response: not base64 of UTF-8 text") from None


def _bind(logger: Any, **context: Any) -> Any:
    bind = getattr(logger, "bind", None)
    return bind(**context) if bind else logger
