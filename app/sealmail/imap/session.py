"""One IMAP session: the state machine of RFC 9051 §3 over a signed-in encrypted mailbox.

States (``states``): not authenticated -> authenticated -> selected -> logout. The session reads
typed commands from ``parser``, dispatches each to its handler, writes the tagged reply, and turns
the store's domain errors into IMAP response codes (``QuotaExceeded`` -> ``NO [OVERQUOTA]``,
``FolderNotFound`` -> ``NO [NONEXISTENT]``...). It never touches SQL.

Where the rest lives:

* here: output, capabilities, the greeting, dispatch, and the commands of any state (CAPABILITY,
  NOOP, LOGOUT, ID), of the not-authenticated state (STARTTLS, LOGIN, AUTHENTICATE), and ENABLE;
* ``mailboxes``: LIST/LSUB, STATUS, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, NAMESPACE, quotas;
* ``selected``: SELECT/EXAMINE, FETCH, SEARCH, STORE, COPY/MOVE, EXPUNGE, CLOSE/UNSELECT, APPEND, IDLE;
  ``sorting``: SORT, THREAD and ESORT (the threading algorithms in ``threads``), ``contexts``:
  RFC 5267 search contexts (RETURN (UPDATE), CANCELUPDATE);
  ``selection``: the selected folder's view and sequence-set resolution; ``fetch``: FETCH's engine;
* ``updates``: other sessions' changes, announced as untagged responses where RFC 9051 allows;
  ``qresync``: VANISHED and the resynchronisation of RFC 7162 §3.2; ``compress``: COMPRESS (RFC 4978);
* ``caches``: what the sessions of one process remember together (owned by ``server``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sealmail import __version__
from sealmail.errors import SealmailError
from sealmail.imap import compress, contexts, mailboxes, selected, sorting, updates, wire
from sealmail.imap import parser as p
from sealmail.imap.caches import SYSTEM_ORDER, ImapCaches
from sealmail.imap.replies import Done, Reply, Silent, bad, no
from sealmail.imap.selection import Selected
from sealmail.imap.states import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED
from sealmail.net.limits import Refused
from sealmail.net.server import ConnectionClosed, LineTransport
from sealmail.services import revocation
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.sessions import MailboxSession, guard, sign_in
from sealmail.spam import learning
from sealmail.store import events as ev
from sealmail.store.errors import (
    FolderExists,
    FolderNotFound,
    InvalidFolderName,
    QuotaExceeded,
    StoreUnavailable,
    UnknownEncoding,
    UnknownSection,
)

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.services.spamlearning import SpamLearner
    from sealmail.spam.rspamd import LearnClass
    from sealmail.store.contract import MailboxHandle

log = logging.getLogger("sealmail.imap")
MAX_BAD_COMMANDS = 50


class Transport(LineTransport, Protocol):
    """What an IMAP session needs from its connection: a line transport that can also compress."""

    @property
    def compressed(self) -> bool: ...

    async def compress(self, reply: bytes) -> None: ...


@dataclass(slots=True)
class Options:
    """Per-process IMAP policy taken from the settings, and the caches the process's sessions share."""

    append_limit: int = 50 * 1024 * 1024
    login_timeout: float = 60.0
    autologout: float = 1800.0
    plaintext_login: bool = False  # LOGIN/AUTHENTICATE without TLS (loopback benchmarks only)
    caches: ImapCaches = field(default_factory=ImapCaches)
    # Teaches rspamd what the user files into or out of Junk (None: no controller, nothing learned)
    learner: SpamLearner | None = None


class Session:
    def __init__(self, ctx: AppContext, transport: Transport, options: Options | None = None, logger: Any = None):
        self.ctx = ctx
        self.conn = transport
        self.options = options or Options()
        self.caches = self.options.caches
        self.log = logger or logging.LoggerAdapter(log, {})
        self.state = NOT_AUTHENTICATED
        self.account: MailboxSession | None = None
        self.mbox: MailboxHandle | None = None
        self.sub: ev.Subscription | None = None
        self.sel: Selected | None = None
        self.utf8 = False
        self.rev2 = False
        self.condstore = False
        self.qresync = False  # RFC 7162 §3.2.3: ENABLE QRESYNC (VANISHED instead of EXPUNGE from then on)
        self.bad_count = 0
        self.poll_after = False  # re-read the selected folder's MODSEQ after this command
        # Revocation (services.revocation): the account's credentials changed elsewhere. While the
        # session waits for the client (``quiet``: between commands, or in IDLE) its task is cancelled
        # and the connection loop says BYE; during a command the loop says it once the command ends.
        self.revoked: str | None = None
        self.quiet = False
        self._task: asyncio.Task[Any] | None = None
        self._watch: revocation.Watch | None = None

    # ---- output ---------------------------------------------------------------------------------
    def out(self, data: bytes) -> None:
        self.conn.write(data)

    def untagged(self, text: str | bytes) -> None:
        self.out(b"* " + (text.encode() if isinstance(text, str) else text) + b"\r\n")

    def tagged(self, tag: str, status: str, text: str, code: str | None = None) -> None:
        line = f"{tag} {status} " + (f"[{code}] " if code else "") + text + "\r\n"
        self.out(line.encode("utf-8"))

    def timeout(self) -> float:
        return self.options.login_timeout if self.state == NOT_AUTHENTICATED else self.options.autologout

    # ---- capabilities ---------------------------------------------------------------------------
    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "ID", "ENABLE", "IDLE"]
        if self.state == NOT_AUTHENTICATED:
            caps.append("SASL-IR")
            if self.conn.can_starttls:
                caps.append("STARTTLS")
            if self.login_allowed():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
            return " ".join(caps)
        caps += [
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "WITHIN",
            "SEARCHRES",
            "OBJECTID",
            "PREVIEW",
            "CONDSTORE",
            "QRESYNC",
            "COMPRESS=DEFLATE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            f"APPENDLIMIT={self.options.append_limit}",
            "UTF8=ACCEPT",
            "BINARY",
            "STATUS=SIZE",
            *sorting.CAPABILITIES,
            *contexts.CAPABILITIES,
        ]
        return " ".join(caps)

    def login_allowed(self) -> bool:
        # RFC 9051 §6.2.3 / RFC 8314: no cleartext passwords on an unencrypted connection.
        return self.conn.secure or self.options.plaintext_login

    def greeting(self) -> None:
        self.untagged(f"OK [CAPABILITY {self.capabilities()}] Sealmail ready")

    # ---- running commands -----------------------------------------------------------------------
    async def execute(self, data: bytes) -> None:
        """Run one complete command (lines and literals as received) and write every response."""
        try:
            command = p.parse_command(data, utf8=self.utf8)
        except p.ParseError as exc:
            self.bad_count += 1
            tag = exc.tag or "*"
            self.tagged(tag, "BAD", exc.message, exc.code)
            if self.bad_count >= MAX_BAD_COMMANDS:
                self.untagged("BYE Too many invalid commands")
                self.state = LOGOUT
            await self.conn.flush()
            return
        self.bad_count = 0
        await self.run(command)

    async def run(self, command: p.Command) -> None:
        handler = self._handler(command)
        try:
            if handler is None:
                raise bad(f"{command.name} is not valid in the {self.state} state")
            result = await handler(self, command)
            status, text, code = result if result else ("OK", f"{command.name} completed", None)
        except Silent:
            await self.conn.flush()
            return
        except Done as done:
            status, text, code = done.status, done.text, done.code
        except FolderNotFound:
            status, text, code = "NO", "No such mailbox", "NONEXISTENT"
        except FolderExists:
            status, text, code = "NO", "Mailbox exists already", "ALREADYEXISTS"
        except InvalidFolderName as exc:
            status, text, code = "NO", str(exc), "CANNOT"
        except QuotaExceeded:
            status, text, code = "NO", "Mailbox is over its quota", "OVERQUOTA"
        except UnknownEncoding:
            status, text, code = "NO", "Unknown content transfer encoding", "UNKNOWN-CTE"
        except UnknownSection as exc:
            status, text, code = "NO", str(exc) or "No such section", None
        except StoreUnavailable:
            # RFC 5530 §3: UNAVAILABLE, a temporary failure; the store client dials again by itself
            self.log.warning("%s: the mailbox store is unavailable", command.name)
            status, text, code = "NO", "Mailbox store unavailable; try again", "UNAVAILABLE"
        except (ConnectionError, ConnectionClosed, asyncio.CancelledError):
            raise
        except Exception:
            self.log.exception("%s failed", command.name)
            status, text, code = "NO", "Internal error; try again", "SERVERBUG"
        if self.state in (AUTHENTICATED, SELECTED):
            expunge_ok = command.name not in ("FETCH", "STORE", "SEARCH", "SORT", "THREAD") or getattr(
                command, "uid", False
            )
            try:
                await updates.catch_up(self, poll=self.poll_after, expunge_ok=expunge_ok)
            except FolderNotFound:
                updates.selected_folder_vanished(self)
            self.poll_after = False
        self.tagged(command.tag, status, text, code)
        await self.conn.flush()

    def _handler(self, command: p.Command) -> Handler | None:
        name = command.name
        handler = _ANY_STATE_COMMANDS.get(name)
        if handler is not None:
            return handler
        if self.state == NOT_AUTHENTICATED:
            return _NOT_AUTHENTICATED_COMMANDS.get(name)
        if self.state not in (AUTHENTICATED, SELECTED):
            return None
        handler = _AUTHENTICATED_COMMANDS.get(name)
        if handler is None and self.state == SELECTED:
            handler = _SELECTED_COMMANDS.get(name)
        return handler

    def _on_revoked(self, event: revocation.Revoked) -> None:
        if self.revoked is not None:
            return
        self.revoked = event.reason
        self.log.info("session ends: the account's credentials changed (%s)", event.reason)
        if self.quiet and self._task is not None:
            self._task.cancel()

    def bye_revoked(self) -> None:
        """RFC 9051 §7.1.5: BYE before the server closes the connection."""
        self.untagged("BYE Signed out: this account's password or access changed")
        self.state = LOGOUT

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.close()
            self.sub = None
        if self.account is not None:
            account, self.account, self.mbox = self.account, None, None
            with contextlib.suppress(Exception):
                await account.close()

    # ---- any state ------------------------------------------------------------------------------
    async def cmd_capability(self, c: p.Command) -> None:
        self.untagged(f"CAPABILITY {self.capabilities()}")

    async def cmd_noop(self, c: p.Command) -> None:
        self.poll_after = True  # RFC 9051 §6.1.2: NOOP is how a client polls for updates

    async def cmd_logout(self, c: p.Command) -> None:
        self.untagged("BYE Sealmail logging out")
        self.state = LOGOUT

    async def cmd_id(self, c: p.Id) -> None:
        # RFC 2971: identify ourselves; the client's parameters are only logged (metadata, no secrets).
        if c.params:
            self.log.info("client id %s", " ".join(f"{k}={v}" for k, v in list(c.params.items())[:4]))
        self.untagged(b'ID ("name" "Sealmail" "version" ' + wire.quoted(__version__) + b")")

    # ---- not authenticated ----------------------------------------------------------------------
    async def cmd_starttls(self, c: p.Command) -> Reply | None:
        if not self.conn.can_starttls:
            raise bad("TLS is active already" if self.conn.secure else "STARTTLS is not offered here")
        # RFC 9051 §6.2.1: the go-ahead goes out with reading paused, so the client's handshake is read
        # by TLS, and whatever it pipelined in clear after STARTTLS is dropped (CVE-2011-0411).
        await self.conn.starttls(f"{c.tag} OK Begin TLS negotiation now\r\n".encode())
        raise Silent()

    async def cmd_login(self, c: p.Login) -> Reply | None:
        if not self.login_allowed():
            raise no("Plaintext login is disabled; use STARTTLS or port 993", "PRIVACYREQUIRED")
        return await self._authenticate(c.user, c.password)

    async def cmd_authenticate(self, c: p.Authenticate) -> Reply | None:
        if c.mechanism != "PLAIN":
            raise no(f"Unsupported mechanism {c.mechanism[:20]}", "CANNOT")
        if not self.login_allowed():
            raise no("Plaintext authentication is disabled; use STARTTLS or port 993", "PRIVACYREQUIRED")
        initial = c.initial
        if initial is None:
            # RFC 9051 §6.2.2: an empty challenge, then one line of base64
            self.out(b"+ \r\n")
            await self.conn.flush()
            line = (await self.conn.readline(self.timeout())).rstrip(b"\r\n")
            if line == b"*":
                raise bad("Authentication cancelled")
            try:
                initial = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raise bad("Invalid base64") from None
        parts = initial.split(b"\x00")
        if len(parts) != 3:
            raise bad("Malformed PLAIN response")
        try:
            authzid, authcid, password = (x.decode("utf-8") for x in parts)
        except UnicodeDecodeError:
            raise bad("PLAIN response is not UTF-8") from None
        if authzid and authzid != authcid:
            raise no("Acting as another user is not supported", "AUTHORIZATIONFAILED")
        return await self._authenticate(authcid, password)

    async def _authenticate(self, user: str, password: str) -> Reply:
        ip = self.conn.peer_ip
        limiter = self.ctx.limiter
        attempt = await limiter.reserve(ip, user)
        if isinstance(attempt, Refused):
            self.log.warning("login refused: %s", attempt.reason)
            raise no(f"{attempt.reason.capitalize()}; try again later", "UNAVAILABLE")
        try:
            account = await sign_in(self.ctx.logins, self.ctx.config, self.ctx.mailstore, user, password)
        except StoreUnavailable:
            await attempt.cancel()  # the store's trouble, not a wrong password
            self.log.warning("login: the mailbox store is unavailable")
            raise no("Mailbox store unavailable; try again later", "UNAVAILABLE") from None
        except (AuthenticationFailed, SealmailError):
            await attempt.failed()
            self.log.info("login failed")
            raise no("Authentication failed", "AUTHENTICATIONFAILED") from None
        await attempt.succeeded()
        self.account = account
        self.mbox = account.mailbox
        try:
            self.sub = await self.ctx.bus.subscribe(self.mbox.mailbox_id)
            self._task = asyncio.current_task()
            self._watch = await guard(
                self.ctx.revocations, self.ctx.config, account.unlocked.credential, self._on_revoked
            )
        except BaseException:
            await self.close()
            raise
        if self._watch is None:  # changed while this login was checked
            await self.close()
            raise no("Authentication failed", "AUTHENTICATIONFAILED")
        self.state = AUTHENTICATED
        self.log = _bind(self.log, user=account.address)
        self.log.info("logged in")
        self.learn_now()  # jobs a stopped process left in the mailbox are done now, in the background
        return "OK", "Logged in", f"CAPABILITY {self.capabilities()}"

    # ---- authenticated --------------------------------------------------------------------------
    async def cmd_enable(self, c: p.Enable) -> None:
        enabled = []
        for cap in c.capabilities:
            if cap == "CONDSTORE":
                self.enable_condstore()
                enabled.append("CONDSTORE")
            elif cap == "QRESYNC":
                self.enable_condstore()  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
                self.qresync = True
                enabled.append("QRESYNC")
            elif cap == "UTF8=ACCEPT":
                self.utf8 = True
                enabled.append("UTF8=ACCEPT")
            elif cap == "IMAP4REV2":
                self.rev2 = True
                enabled.append("IMAP4rev2")
        self.untagged("ENABLED" + "".join(" " + e for e in dict.fromkeys(enabled)))

    def enable_condstore(self) -> None:
        if self.condstore:
            return
        self.condstore = True
        if self.sel is not None:
            # RFC 7162 §3.1: enabled while a mailbox is selected: tell its HIGHESTMODSEQ now
            self.untagged(f"OK [HIGHESTMODSEQ {self.sel.modseq}] Highest")

    # ---- shared by the command modules ----------------------------------------------------------
    def learning_signal(self, source_use: str | None, target_use: str | None) -> LearnClass | None:
        """What a COPY/MOVE between folders of these special uses teaches (None too without a learner)."""
        if self.options.learner is None:
            return None
        return learning.signal(source_use, target_use)

    def learn_now(self) -> None:
        """Let the learner do the mailbox's waiting jobs in the background, with this session's keys."""
        if self.options.learner is not None and self.account is not None:
            self.options.learner.kick(self.account.unlocked.mailbox_id, self.account.unlocked.secrets)

    def selected(self) -> Selected:
        """The selected folder (only called by commands valid in the selected state)."""
        assert self.sel is not None
        return self.sel

    def flags_responses(self, sel: Selected) -> None:
        flags = " ".join((*SYSTEM_ORDER, *sel.keywords))
        self.untagged(f"FLAGS ({flags})")
        permanent = "" if sel.readonly else f"{flags} \\*"
        self.untagged(f"OK [PERMANENTFLAGS ({permanent})] Flags permitted")

    def flag_list(self, flags: frozenset[str], recent: bool) -> bytes:
        """A message's FLAGS; \\Recent only where IMAP4rev2 is not enabled (RFC 9051 removed it)."""
        return self.caches.flag_list(flags, recent and not self.rev2, self.utf8)


# A command handler: the session and the parsed command its name implies (the parser makes the
# command's type match its name, so each handler declares its own command type; here it is Any).
Handler = Callable[[Session, Any], Awaitable[Reply | None]]

_ANY_STATE_COMMANDS: dict[str, Handler] = {
    "CAPABILITY": Session.cmd_capability,
    "NOOP": Session.cmd_noop,
    "LOGOUT": Session.cmd_logout,
    "ID": Session.cmd_id,
}
_NOT_AUTHENTICATED_COMMANDS: dict[str, Handler] = {
    "STARTTLS": Session.cmd_starttls,
    "LOGIN": Session.cmd_login,
    "AUTHENTICATE": Session.cmd_authenticate,
}
_AUTHENTICATED_COMMANDS: dict[str, Handler] = {
    "ENABLE": Session.cmd_enable,
    "SELECT": selected.cmd_select,
    "EXAMINE": selected.cmd_select,
    "CREATE": mailboxes.cmd_create,
    "DELETE": mailboxes.cmd_delete,
    "RENAME": mailboxes.cmd_rename,
    "SUBSCRIBE": mailboxes.cmd_subscribe,
    "UNSUBSCRIBE": mailboxes.cmd_subscribe,
    "LIST": mailboxes.cmd_list,
    "LSUB": mailboxes.cmd_list,
    "NAMESPACE": mailboxes.cmd_namespace,
    "STATUS": mailboxes.cmd_status,
    "APPEND": selected.cmd_append,
    "IDLE": selected.cmd_idle,
    "GETQUOTA": mailboxes.cmd_getquota,
    "GETQUOTAROOT": mailboxes.cmd_getquotaroot,
    "SETQUOTA": mailboxes.cmd_setquota,
    "COMPRESS": compress.cmd_compress,
}
_SELECTED_COMMANDS: dict[str, Handler] = {
    "CHECK": selected.cmd_check,
    "CLOSE": selected.cmd_close,
    "UNSELECT": selected.cmd_unselect,
    "EXPUNGE": selected.cmd_expunge,
    "UID EXPUNGE": selected.cmd_expunge,
    "SEARCH": selected.cmd_search,
    "SORT": sorting.cmd_sort,
    "THREAD": sorting.cmd_thread,
    "CANCELUPDATE": contexts.cmd_cancelupdate,
    "FETCH": selected.cmd_fetch,
    "STORE": selected.cmd_store,
    "COPY": selected.cmd_copy,
    "MOVE": selected.cmd_copy,
}


def _bind(logger: Any, **context: Any) -> Any:
    bind = getattr(logger, "bind", None)
    return bind(**context) if bind else logger
