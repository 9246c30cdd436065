"""One IMAP session: the state machine of RFC 9051 §3 over a signed-in encrypted mailbox.

States: not authenticated -> authenticated -> selected -> logout. The session owns what only it
knows — the selected folder's sequence numbers (its UID list), which messages are \\Recent to it,
which enabled extensions change the answers — and turns typed commands from ``parser`` into store
calls and responses. It never touches SQL: the store's domain errors are translated here
(``QuotaExceeded`` -> ``NO [OVERQUOTA]``, ``FolderNotFound`` -> ``NO [NONEXISTENT]``...).

Other sessions' changes arrive as store change events (IDs, UIDs and MODSEQs only). They are
absorbed into pending updates and announced only where RFC 9051 allows: EXISTS and FETCH at the end
of any command, EXPUNGE never while answering FETCH, STORE or SEARCH (RFC 9051 §7.5.1), and at once
during IDLE (RFC 2177). The folder's HIGHESTMODSEQ is the ground truth: whenever events may have
been missed or arrive out of order, the session re-reads what changed since the MODSEQ it knows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

from sealmail import __version__
from sealmail.errors import SealmailError
from sealmail.imap import parser as p
from sealmail.imap import wire
from sealmail.imap.uidmap import UidMap
from sealmail.services import revocation
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.sessions import MailboxSession, guard, sign_in
from sealmail.store import events as ev
from sealmail.store import search as sk
from sealmail.store.errors import (
    FolderExists,
    FolderNotFound,
    InvalidFolderName,
    QuotaExceeded,
    UnknownEncoding,
    UnknownSection,
)
from sealmail.store.mailbox import DELIMITER, INBOX, SPECIAL_USES, SYSTEM_FLAGS, MessageInfo

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.store.mailstore import AsyncMailbox

log = logging.getLogger("sealmail.imap")
# Per shared mailbox handle: the highest UID per folder that some session of this process claimed \Recent for.
_CLAIMED: weakref.WeakKeyDictionary[Any, dict[int, int]] = weakref.WeakKeyDictionary()
# Per shared mailbox handle: ENVELOPE and BODYSTRUCTURE answers already written, by (item, body id, UTF-8 on).
# A body never changes, so they stay right; they live as long as the unlocked mailbox (like SQLite's page
# cache of the decrypted file) and spare the store and the serialiser when clients list a folder again.
_TEXT_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, bool], str]] = weakref.WeakKeyDictionary()
TEXT_CACHE_ENTRIES = 100_000
_CACHEABLE = ("ENVELOPE", "BODYSTRUCTURE")
# Per shared mailbox handle: every message's metadata of recently listed folders, valid at a HIGHESTMODSEQ.
# "FETCH 1:* (FLAGS)" again then costs one folder lookup plus what changed since (RFC 7162 keeps it honest:
# every append, flag change and expunge raises the folder's MODSEQ).
_INFO_CACHE: weakref.WeakKeyDictionary[Any, dict[str, _FolderInfos]] = weakref.WeakKeyDictionary()
INFO_CACHE_FOLDERS = 4


@dataclass(slots=True)
class _FolderInfos:
    folder_id: int
    uidvalidity: int
    modseq: int
    infos: list[MessageInfo]


def _folder_infos(mailbox: Any, name: str, cache: dict[str, _FolderInfos]) -> list[MessageInfo]:
    """Every message of folder ``name`` (ascending UID), from the cache brought up to date. Worker thread."""
    folder = mailbox.folder(name)
    entry = cache.get(folder.name)
    if entry is not None and entry.folder_id == folder.id and entry.uidvalidity == folder.uidvalidity:
        if entry.modseq == folder.highestmodseq:
            return entry.infos
        changed = mailbox.messages(folder.name, changed_since=entry.modseq)
        gone = set(mailbox.expunged_since(folder.name, entry.modseq))
        merged = {i.uid: i for i in entry.infos if i.uid not in gone}
        merged.update((i.uid, i) for i in changed if i.uid not in gone)
        infos = [merged[uid] for uid in sorted(merged)]
    else:
        infos = mailbox.messages(folder.name)
    cache.pop(folder.name, None)
    while len(cache) >= INFO_CACHE_FOLDERS:
        cache.pop(next(iter(cache)))
    cache[folder.name] = _FolderInfos(folder.id, folder.uidvalidity, folder.highestmodseq, infos)
    return infos


NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT = "not authenticated", "authenticated", "selected", "logout"
FETCH_CHUNK = 1000
FETCH_CHUNK_BYTES = 4 * 1024 * 1024
MAX_BAD_COMMANDS = 50
_SYSTEM_ORDER = tuple(SYSTEM_FLAGS)
_SEEN_SETTING = frozenset(("BODY[", "BINARY[", "RFC822", "RFC822.TEXT"))


class Transport(Protocol):
    """What a session needs from its connection (``sealmail.net.server.Connection`` provides it)."""

    secure: bool
    peer_ip: str

    @property
    def can_starttls(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    async def flush(self) -> None: ...

    async def readline(self, timeout: float | None = None) -> bytes: ...

    async def starttls(self, reply: bytes | None = None) -> None: ...


@dataclass(slots=True)
class Options:
    """Per-process IMAP policy taken from the settings."""

    append_limit: int = 50 * 1024 * 1024
    login_timeout: float = 60.0
    autologout: float = 1800.0
    plaintext_login: bool = False  # LOGIN/AUTHENTICATE without TLS (loopback benchmarks only)


class Done(Exception):
    """Ends a command with a tagged response."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code = status, text, code


def _no(text: str, code: str | None = None) -> Done:
    return Done("NO", text, code)


def _bad(text: str, code: str | None = None) -> Done:
    return Done("BAD", text, code)


@dataclass(slots=True)
class Selected:
    """The selected folder as this session sees it."""

    name: str
    folder_id: int
    readonly: bool
    uidvalidity: int
    uids: UidMap  # ascending; index + 1 is the sequence number; includes unannounced expunges
    modseq: int  # every change up to this MODSEQ is reflected here (or pending below)
    recent: set[int] = field(default_factory=set)
    ghosts: set[int] = field(default_factory=set)  # expunged elsewhere, EXPUNGE not yet sent
    dirty: dict[int, MessageInfo | None] = field(default_factory=dict)  # flags changed elsewhere
    exists: int = 0  # the last EXISTS count announced
    keywords: tuple[str, ...] = ()
    own: set[int] = field(default_factory=set)  # MODSEQs of flag changes this session made and reported

    def note_own(self, modseq: int) -> None:
        """A flag change of ours: when its event comes back through the bus it is not news."""
        if modseq == self.modseq + 1:
            self.modseq = modseq
        else:
            self.own.add(modseq)  # events before it are still on their way; recognise it when it arrives

    def seq_of(self, uid: int) -> int:
        return self.uids.index(uid) + 1

    def max_uid(self) -> int:
        return self.uids.last()


class Session:
    def __init__(self, ctx: AppContext, transport: Transport, options: Options | None = None, logger: Any = None):
        self.ctx = ctx
        self.conn = transport
        self.options = options or Options()
        self.log = logger or logging.LoggerAdapter(log, {})
        self.state = NOT_AUTHENTICATED
        self.account: MailboxSession | None = None
        self.mbox: AsyncMailbox | None = None
        self.sub: ev.Subscription | None = None
        self.sel: Selected | None = None
        self.utf8 = False
        self.rev2 = False
        self.condstore = False
        self.bad_count = 0
        self._poll = False  # re-read the selected folder's MODSEQ after this command
        self._folders_changed = False
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
            "CONDSTORE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            f"APPENDLIMIT={self.options.append_limit}",
            "UTF8=ACCEPT",
            "BINARY",
            "STATUS=SIZE",
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
                raise _bad(f"{command.name} is not valid in the {self.state} state")
            result = await handler(command)
            status, text, code = result if result else ("OK", f"{command.name} completed", None)
        except _Silent:
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
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            if type(exc).__name__ == "ConnectionClosed":
                raise
            self.log.exception("%s failed", command.name)
            status, text, code = "NO", "Internal error; try again", "SERVERBUG"
        if self.state in (AUTHENTICATED, SELECTED):
            expunge_ok = command.name not in ("FETCH", "STORE", "SEARCH") or getattr(command, "uid", False)
            try:
                await self.catch_up(poll=self._poll, expunge_ok=expunge_ok)
            except FolderNotFound:
                self._selected_folder_vanished()
            self._poll = False
        self.tagged(command.tag, status, text, code)
        await self.conn.flush()

    def _handler(self, command: p.Command) -> Callable[[Any], Any] | None:
        name = command.name
        if name in ("CAPABILITY", "NOOP", "LOGOUT", "ID"):
            return getattr(self, "cmd_" + name.lower())
        if self.state == NOT_AUTHENTICATED:
            return {"STARTTLS": self.cmd_starttls, "LOGIN": self.cmd_login, "AUTHENTICATE": self.cmd_authenticate}.get(
                name
            )
        if self.state not in (AUTHENTICATED, SELECTED):
            return None
        handler = _AUTHENTICATED_COMMANDS.get(name)
        if handler is None and self.state == SELECTED:
            handler = _SELECTED_COMMANDS.get(name)
        return handler.__get__(self) if handler else None

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
        self._poll = True  # RFC 9051 §6.1.2: NOOP is how a client polls for updates

    async def cmd_logout(self, c: p.Command) -> None:
        self.untagged("BYE Sealmail logging out")
        self.state = LOGOUT

    async def cmd_id(self, c: p.Id) -> None:
        # RFC 2971: identify ourselves; the client's parameters are only logged (metadata, no secrets).
        if c.params:
            self.log.info("client id %s", " ".join(f"{k}={v}" for k, v in list(c.params.items())[:4]))
        self.untagged(b'ID ("name" "Sealmail" "version" ' + wire.quoted(__version__) + b")")

    # ---- not authenticated ----------------------------------------------------------------------
    async def cmd_starttls(self, c: p.Command) -> tuple[str, str, None] | None:
        if not self.conn.can_starttls:
            raise _bad("TLS is active already" if self.conn.secure else "STARTTLS is not offered here")
        # RFC 9051 §6.2.1: the go-ahead goes out with reading paused, so the client's handshake is read
        # by TLS, and whatever it pipelined in clear after STARTTLS is dropped (CVE-2011-0411).
        await self.conn.starttls(f"{c.tag} OK Begin TLS negotiation now\r\n".encode())
        raise _Silent()

    async def cmd_login(self, c: p.Login) -> tuple[str, str, str] | None:
        if not self.login_allowed():
            raise _no("Plaintext login is disabled; use STARTTLS or port 993", "PRIVACYREQUIRED")
        return await self._authenticate(c.user, c.password)

    async def cmd_authenticate(self, c: p.Authenticate) -> tuple[str, str, str] | None:
        if c.mechanism != "PLAIN":
            raise _no(f"Unsupported mechanism {c.mechanism[:20]}", "CANNOT")
        if not self.login_allowed():
            raise _no("Plaintext authentication is disabled; use STARTTLS or port 993", "PRIVACYREQUIRED")
        initial = c.initial
        if initial is None:
            # RFC 9051 §6.2.2: an empty challenge, then one line of base64
            self.out(b"+ \r\n")
            await self.conn.flush()
            line = (await self.conn.readline(self.timeout())).rstrip(b"\r\n")
            if line == b"*":
                raise _bad("Authentication cancelled")
            try:
                initial = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raise _bad("Invalid base64") from None
        parts = initial.split(b"\x00")
        if len(parts) != 3:
            raise _bad("Malformed PLAIN response")
        try:
            authzid, authcid, password = (x.decode("utf-8") for x in parts)
        except UnicodeDecodeError:
            raise _bad("PLAIN response is not UTF-8") from None
        if authzid and authzid != authcid:
            raise _no("Acting as another user is not supported", "AUTHORIZATIONFAILED")
        return await self._authenticate(authcid, password)

    async def _authenticate(self, user: str, password: str) -> tuple[str, str, str]:
        ip = self.conn.peer_ip
        limiter = self.ctx.limiter
        attempt = await limiter.reserve(ip, user)
        if attempt is None:
            self.log.warning("login refused: too many failures")
            raise _no("Too many failed logins; try again later", "UNAVAILABLE")
        try:
            account = await sign_in(self.ctx.config, self.ctx.settings, self.ctx.mailstore, user, password)
        except (AuthenticationFailed, SealmailError):
            await attempt.failed()
            self.log.info("login failed")
            raise _no("Authentication failed", "AUTHENTICATIONFAILED") from None
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
            raise _no("Authentication failed", "AUTHENTICATIONFAILED")
        self.state = AUTHENTICATED
        self.log = _bind(self.log, user=account.address)
        self.log.info("logged in")
        return "OK", "Logged in", f"CAPABILITY {self.capabilities()}"

    # ---- authenticated --------------------------------------------------------------------------
    async def cmd_enable(self, c: p.Enable) -> None:
        enabled = []
        for cap in c.capabilities:
            if cap == "CONDSTORE":
                self._enable_condstore()
                enabled.append("CONDSTORE")
            elif cap == "UTF8=ACCEPT":
                self.utf8 = True
                enabled.append("UTF8=ACCEPT")
            elif cap == "IMAP4REV2":
                self.rev2 = True
                enabled.append("IMAP4rev2")
        self.untagged("ENABLED" + "".join(" " + e for e in dict.fromkeys(enabled)))

    def _enable_condstore(self) -> None:
        if self.condstore:
            return
        self.condstore = True
        if self.sel is not None:
            # RFC 7162 §3.1: enabled while a mailbox is selected: tell its HIGHESTMODSEQ now
            self.untagged(f"OK [HIGHESTMODSEQ {self.sel.modseq}] Highest")

    async def cmd_namespace(self, c: p.Command) -> None:
        # RFC 2342: one personal namespace, no others
        self.untagged('NAMESPACE (("" "/")) NIL NIL')

    async def cmd_select(self, c: p.Select) -> tuple[str, str, str]:
        assert self.mbox is not None
        if self.sel is not None:
            self.sel = None
            self.state = AUTHENTICATED
            self.untagged("OK [CLOSED] Previous mailbox closed")  # RFC 9051 §6.3.2, RFC 7162 §3.2.11
        if c.condstore:
            self.condstore = True
        mailbox = self.mbox.mailbox
        readonly = c.readonly

        def load() -> tuple[Any, list[int], set[int], list[str], list[int]]:
            folder = mailbox.folder(c.mailbox)
            # RFC 3501 §6.3.2: SELECT takes the \Recent messages; EXAMINE only counts them
            if readonly:
                recent = set(mailbox.search(folder.name, sk.HasFlag("\\Recent")))
            else:
                recent = mailbox.claim_recent(folder.name)
            uids = mailbox.uids(folder.name)
            keywords = mailbox.keywords()
            unseen = mailbox.search(folder.name, sk.Not(sk.HasFlag("\\Seen"))) if not self.rev2 else []
            return folder, uids, recent, keywords, unseen[:1]

        folder, uids, recent, keywords, first_unseen = await self.mbox.run(load)
        sel = Selected(folder.name, folder.id, readonly, folder.uidvalidity, UidMap(uids), folder.highestmodseq, recent)
        sel.exists = len(uids)
        sel.keywords = tuple(keywords)
        self.sel = sel
        self.state = SELECTED
        self._flags_responses(sel)
        self.untagged(f"{len(uids)} EXISTS")
        if not self.rev2:
            self.untagged(f"{len(recent)} RECENT")
            if first_unseen:
                self.untagged(f"OK [UNSEEN {sel.seq_of(first_unseen[0])}] First unseen")
        self.untagged(f"OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {folder.uidnext}] Predicted next UID")
        self.untagged(f"OK [HIGHESTMODSEQ {folder.highestmodseq}] Highest")
        if self.rev2:
            self.untagged(b'LIST () "/" ' + wire.mailbox(folder.name, self.utf8))
        code = "READ-ONLY" if readonly else "READ-WRITE"
        return "OK", f"{c.name} completed", code

    def _flags_responses(self, sel: Selected) -> None:
        flags = " ".join((*_SYSTEM_ORDER, *sel.keywords))
        self.untagged(f"FLAGS ({flags})")
        permanent = "" if sel.readonly else f"{flags} \\*"
        self.untagged(f"OK [PERMANENTFLAGS ({permanent})] Flags permitted")

    async def cmd_create(self, c: p.Create) -> None:
        assert self.mbox is not None
        name = c.mailbox.rstrip(DELIMITER)  # RFC 9051 §6.3.4: a trailing delimiter only declares intent
        if not name:
            raise _no("Empty mailbox name", "CANNOT")
        if name.upper() == INBOX:
            raise _no("INBOX exists already", "ALREADYEXISTS")
        special = None
        if c.special_use is not None:
            special = next((u for u in SPECIAL_USES if u.lower() == c.special_use.lower()), None)
            if special is None:
                raise _no(f"Unknown special use {c.special_use[:20]}", "USEATTR")
        mailbox = self.mbox.mailbox

        def create() -> None:
            before = {f.name for f in mailbox.list_folders()}
            folder = mailbox.create_folder(name, special)
            # RFC 9051 §6.3.4: CREATE does not subscribe (the store subscribes new folders by default),
            # nor the parents it had to make
            for made in {folder.name, *(f.name for f in mailbox.list_folders())} - before:
                mailbox.set_subscribed(made, False)

        await self.mbox.run(create)

    async def cmd_delete(self, c: p.MailboxCommand) -> None:
        assert self.mbox is not None
        if c.mailbox.upper() == INBOX:
            raise _no("INBOX cannot be deleted", "CANNOT")
        await self.mbox.delete_folder(c.mailbox)
        if self.sel is not None and self.sel.name == _canonical(c.mailbox):
            self.sel = None
            self.state = AUTHENTICATED

    async def cmd_rename(self, c: p.Rename) -> None:
        assert self.mbox is not None
        old, new = _canonical(c.old), _canonical(c.new.rstrip(DELIMITER))
        await self.mbox.rename_folder(old, new)
        sel = self.sel
        if sel is not None and old != INBOX:
            if sel.name == old:
                sel.name = new
            elif sel.name.startswith(old + DELIMITER):
                sel.name = new + sel.name[len(old) :]

    async def cmd_subscribe(self, c: p.MailboxCommand) -> None:
        assert self.mbox is not None
        await self.mbox.set_subscribed(c.mailbox, c.name == "SUBSCRIBE")

    async def cmd_list(self, c: p.ListCommand) -> None:
        assert self.mbox is not None
        if c.name == "LIST" and c.patterns == ("",) and not c.extended:
            # RFC 9051 §6.3.9: the hierarchy delimiter and root
            self.untagged('LIST (\\Noselect) "/" ""')
            return
        folders = await self.mbox.list_folders()
        by_name = {f.name: f for f in folders}
        names = sorted(by_name)
        matchers = [_pattern(c.reference + pat) for pat in c.patterns if c.reference + pat]
        lsub = c.name == "LSUB"
        subscribed_only = lsub or "SUBSCRIBED" in c.select_opts
        show_subscribed = subscribed_only or "SUBSCRIBED" in c.return_opts
        special_only = "SPECIAL-USE" in c.select_opts
        rows: list[tuple[str, list[str], bytes]] = []
        seen: set[str] = set()
        for name in names:
            folder = by_name[name]
            matched = any(m(name) for m in matchers)
            attrs: list[str] = []
            extra = b""
            subscribed_child = (
                subscribed_only
                and not lsub
                and "RECURSIVEMATCH" in c.select_opts
                and any(
                    by_name[n].subscribed and not any(m(n) for m in matchers)
                    for n in names
                    if n.startswith(name + DELIMITER)
                )
            )
            if not matched:
                continue
            if subscribed_only and not folder.subscribed and not subscribed_child:
                continue
            if subscribed_child:
                # RFC 5258 §3.5: subscribed descendants the patterns themselves do not match
                extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
            if subscribed_only and not folder.subscribed:
                rows.append((name, ["\\HasChildren"] if "CHILDREN" in c.return_opts else [], extra))
                seen.add(name)
                continue
            if special_only and not folder.special_use:
                continue
            if folder.noselect:
                attrs.append("\\Noselect")
            if not lsub:
                has_children = any(n.startswith(name + DELIMITER) for n in names)
                attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
                if folder.special_use:
                    attrs.append(folder.special_use)
            if show_subscribed and folder.subscribed and not lsub:
                attrs.append("\\Subscribed")
            rows.append((name, attrs, extra))
            seen.add(name)
        if lsub:
            # RFC 3501 §6.3.9: "%" stops at a level whose subscribed children lie deeper: shown \Noselect
            for name in names:
                folder = by_name[name]
                if not folder.subscribed:
                    continue
                parts = name.split(DELIMITER)
                for i in range(1, len(parts)):
                    parent = DELIMITER.join(parts[:i])
                    if parent not in seen and any(m(parent) for m in matchers):
                        seen.add(parent)
                        rows.append((parent, ["\\Noselect"], b""))
            rows.sort(key=lambda r: r[0])
        statuses: dict[str, Any] = {}
        if c.status_items:
            mailbox = self.mbox.mailbox
            wanted = [n for n, _, _ in rows if n in by_name and not by_name[n].noselect]

            def load() -> dict[str, Any]:
                return {n: mailbox.status(n) for n in wanted}

            statuses = await self.mbox.run(load)
        word = c.name.encode()
        for name, attrs, extra in rows:
            self.untagged(word + b" (" + " ".join(attrs).encode() + b') "/" ' + wire.mailbox(name, self.utf8) + extra)
            if name in statuses:
                self._status_response(name, statuses[name], c.status_items)

    async def cmd_status(self, c: p.Status) -> None:
        assert self.mbox is not None
        status = await self.mbox.status(c.mailbox)
        self._status_response(_canonical(c.mailbox), status, c.items)

    def _status_response(self, name: str, status: Any, items: Iterable[str]) -> None:
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity,
            "UNSEEN": status.unseen,
            "DELETED": status.deleted,
            "SIZE": status.size,
            "HIGHESTMODSEQ": status.highestmodseq,
            "APPENDLIMIT": self.options.append_limit,
        }
        body = " ".join(f"{item} {values[item]}" for item in dict.fromkeys(items))
        self.untagged(b"STATUS " + wire.mailbox(name, self.utf8) + f" ({body})".encode())

    async def cmd_append(self, c: p.Append) -> tuple[str, str, str]:
        assert self.mbox is not None
        if len(c.message) > self.options.append_limit:
            raise _no("Message too large", "TOOBIG")
        if not c.message:
            raise _no("Empty message", "CANNOT")
        flags = [f for f in c.flags if f.lower() != "\\recent"]
        for flag in flags:
            if flag.startswith("\\") and flag.lower() not in {s.lower() for s in SYSTEM_FLAGS}:
                raise _bad(f"Unknown system flag {flag[:30]}")
        when = c.date.astimezone(UTC) if c.date else None
        try:
            result = await self.mbox.append(c.mailbox, c.message, flags, when)
        except FolderNotFound:
            raise _no("No such mailbox", "TRYCREATE") from None
        if self.sel is not None and self.sel.name == _canonical(c.mailbox):
            self._poll = True
        return "OK", "APPEND completed", f"APPENDUID {result.uidvalidity} {result.uid}"

    async def cmd_idle(self, c: p.Command) -> tuple[str, str, None]:
        # RFC 2177: updates go out as they happen until the client says DONE
        assert self.sub is not None
        self.out(b"+ idling\r\n")
        await self.catch_up(poll=True, expunge_ok=True)
        await self.conn.flush()
        reader = asyncio.ensure_future(self.conn.readline(self.options.autologout))
        try:
            while True:
                getter = asyncio.ensure_future(self.sub.queue.get())
                self.quiet = True
                try:
                    done, _ = await asyncio.wait({reader, getter}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    getter.cancel()
                    raise
                finally:
                    self.quiet = False
                if getter in done:
                    first = getter.result()
                else:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        first = await getter
                    first = getter.result() if not getter.cancelled() else None
                if first is not None:
                    try:
                        await self.catch_up(poll=False, expunge_ok=True, first=first)
                    except FolderNotFound:
                        self._selected_folder_vanished()
                    await self.conn.flush()
                if reader in done:
                    break
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
        try:
            line = reader.result()
        except TimeoutError:
            self.untagged("BYE Autologout; idle for too long")
            self.state = LOGOUT
            raise _Silent() from None
        if line.rstrip(b"\r\n").upper() != b"DONE":
            raise _bad("Expected DONE")
        return "OK", "IDLE terminated", None

    async def cmd_getquotaroot(self, c: p.MailboxCommand) -> None:
        assert self.mbox is not None
        await self.mbox.folder(c.mailbox)  # NONEXISTENT for an unknown mailbox
        self.untagged(b"QUOTAROOT " + wire.mailbox(_canonical(c.mailbox), self.utf8) + b' ""')
        await self._quota_response()

    async def cmd_getquota(self, c: p.GetQuota) -> None:
        if c.root != "":
            raise _no("No such quota root", "NONEXISTENT")
        await self._quota_response()

    async def cmd_setquota(self, c: p.SetQuota) -> None:
        raise _no("Quotas are set by the administrator", "CANNOT")

    async def _quota_response(self) -> None:
        # RFC 9208 §5.1: STORAGE in units of 1024 octets
        assert self.mbox is not None
        used = await self.mbox.usage()
        limit = self.mbox.mailbox.quota
        resources = "" if limit is None else f"STORAGE {(used + 1023) // 1024} {limit // 1024}"
        self.untagged(f'QUOTA "" ({resources})')

    # ---- selected -------------------------------------------------------------------------------
    def _sel(self) -> Selected:
        assert self.sel is not None
        return self.sel

    async def cmd_check(self, c: p.Command) -> None:
        self._poll = True

    async def cmd_close(self, c: p.Command) -> None:
        sel = self._sel()
        assert self.mbox is not None
        self.sel = None
        self.state = AUTHENTICATED
        if not sel.readonly:
            # RFC 9051 §6.4.1: remove \Deleted messages silently
            with contextlib.suppress(FolderNotFound):
                await self.mbox.expunge(sel.name)

    async def cmd_unselect(self, c: p.Command) -> None:
        self.sel = None
        self.state = AUTHENTICATED

    async def cmd_expunge(self, c: p.Command | p.UidExpunge) -> None:
        sel = self._sel()
        assert self.mbox is not None
        if sel.readonly:
            raise _no("Mailbox is read-only", "READ-ONLY")
        uids = None
        if isinstance(c, p.UidExpunge):
            uids = [uid for _, uid in self._resolve(c.seqs, uid=True)]
        removed = await self.mbox.expunge(sel.name, uids)
        sel.ghosts.update(u for u in removed if sel.seq_of(u))
        self._announce_expunges(sel)

    async def cmd_search(self, c: p.Search) -> tuple[str, str, str | None] | None:
        sel = self._sel()
        assert self.mbox is not None
        if c.charset not in (None, "UTF-8", "US-ASCII"):
            raise _no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        uses_modseq = _uses_modseq(c.key)
        if uses_modseq:
            self._enable_condstore()
        key = self._resolve_key(c.key)
        known_max = sel.max_uid()
        found = [u for u in await self.mbox.search(sel.name, key) if u <= known_max and u not in sel.ghosts]
        found = [u for u in found if sel.seq_of(u)]
        highest = None
        if uses_modseq and found:
            subset = found
            if c.returns and set(c.returns) <= {"MIN", "MAX"}:
                # RFC 4731 §3.2 with RFC 7162: the MODSEQ of the messages actually returned
                subset = [*([found[0]] if "MIN" in c.returns else []), *([found[-1]] if "MAX" in c.returns else [])]
            infos = await self.mbox.messages(sel.name, subset)
            highest = max((i.modseq for i in infos), default=None)
        numbers = found if c.uid else [sel.seq_of(u) for u in found]
        if c.returns is not None or self.rev2:
            # RFC 4731 / RFC 9051 §7.3.4: ESEARCH
            opts = set(c.returns or ()) or {"ALL"}
            parts = [f'ESEARCH (TAG "{c.tag}")']
            if c.uid:
                parts.append("UID")
            if numbers:
                if "MIN" in opts:
                    parts.append(f"MIN {min(numbers)}")
                if "MAX" in opts:
                    parts.append(f"MAX {max(numbers)}")
                if "ALL" in opts:
                    parts.append(f"ALL {wire.sequence_set(sorted(numbers))}")
            if "COUNT" in opts:
                parts.append(f"COUNT {len(numbers)}")
            if highest is not None:
                parts.append(f"MODSEQ {highest}")
            self.untagged(" ".join(parts))
        else:
            line = "SEARCH" + "".join(f" {n}" for n in numbers)
            if highest is not None:
                line += f" (MODSEQ {highest})"  # RFC 7162 §3.1.5
            self.untagged(line)
        return None

    async def cmd_fetch(self, c: p.Fetch) -> tuple[str, str, str | None] | None:
        sel = self._sel()
        assert self.mbox is not None
        targets = self._resolve(c.seqs, c.uid)
        atts = list(c.atts)
        kinds = {a.kind for a in atts}
        if c.uid and "UID" not in kinds:
            atts.insert(0, p.FetchAtt("UID"))
        if c.changed_since is not None or "MODSEQ" in kinds:
            self._enable_condstore()  # RFC 7162 §3.1: the first CONDSTORE command enables it
        if c.changed_since is not None and "MODSEQ" not in kinds:
            atts.append(p.FetchAtt("MODSEQ"))
        ghosts = [uid for _, uid in targets if uid in sel.ghosts]
        targets = [(s, u) for s, u in targets if u not in sel.ghosts]
        if targets:
            await Fetcher(self, sel, atts, c.changed_since).run(targets)
        if ghosts and not c.uid:
            return "OK", "Some messages were expunged meanwhile", "EXPUNGEISSUED"
        return None

    async def cmd_store(self, c: p.Store) -> tuple[str, str, str | None] | None:
        sel = self._sel()
        assert self.mbox is not None
        if sel.readonly:
            raise _no("Mailbox is read-only", "READ-ONLY")
        for flag in c.flags:
            if flag.startswith("\\") and flag.lower() not in {s.lower() for s in (*SYSTEM_FLAGS, "\\Recent")}:
                raise _bad(f"Unknown system flag {flag[:30]}")
        if c.unchanged_since is not None:
            self._enable_condstore()
        targets = [(s, u) for s, u in self._resolve(c.seqs, c.uid) if u not in sel.ghosts]
        flags = [f for f in c.flags if f.lower() != "\\recent"]
        result = await self.mbox.store_flags(
            sel.name, [u for _, u in targets], c.mode, flags, unchanged_since=c.unchanged_since
        )
        if result.changed:
            sel.note_own(result.changed[0].modseq)  # our own change: no need to hear of it again
        new_keywords = [
            f for f in flags if not f.startswith("\\") and f.lower() not in {k.lower() for k in sel.keywords}
        ]
        if new_keywords:
            sel.keywords = tuple(await self.mbox.keywords())
            self._flags_responses(sel)
        infos = sorted((*result.changed, *result.unchanged), key=lambda i: i.uid)
        changed = {i.uid for i in result.changed}
        for info in infos:
            sel.dirty.pop(info.uid, None)
            seq = sel.seq_of(info.uid)
            if not seq:
                continue
            parts = []
            if c.uid:
                parts.append(b"UID %d" % info.uid)
            if not c.silent:
                parts.append(b"FLAGS " + self._flags(info.flags, info.uid in sel.recent))
            if self.condstore and (not c.silent or info.uid in changed):
                parts.append(b"MODSEQ (%d)" % info.modseq)
            if c.silent and not (self.condstore and info.uid in changed):
                continue
            self.out(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
        if result.conflicts:
            # RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE
            numbers = sorted(result.conflicts) if c.uid else sorted(sel.seq_of(u) for u in result.conflicts)
            return "OK", "Conditional STORE failed for some messages", f"MODIFIED {wire.sequence_set(numbers)}"
        return None

    async def cmd_copy(self, c: p.Copy) -> tuple[str, str, str | None] | None:
        sel = self._sel()
        assert self.mbox is not None
        move = c.name == "MOVE"
        if move and sel.readonly:
            raise _no("Mailbox is read-only", "READ-ONLY")
        uids = [u for _, u in self._resolve(c.seqs, c.uid) if u not in sel.ghosts]
        target = _canonical(c.mailbox)
        try:
            await self.mbox.folder(target)
        except FolderNotFound:
            raise _no("No such mailbox", "TRYCREATE") from None
        if not uids:
            return None
        if move and target == sel.name:
            # RFC 6851 §3.3: moving into the same mailbox gives the messages new UIDs
            result = await self.mbox.copy(sel.name, uids, target)
            await self.mbox.store_flags(sel.name, uids, "add", ["\\Deleted"])
            await self.mbox.expunge(sel.name, uids)
        else:
            result = await (self.mbox.move if move else self.mbox.copy)(sel.name, uids, target)
        if target == sel.name:
            self._poll = True
        code = None
        if result.pairs:
            src = wire.sequence_set(a for a, _ in result.pairs)
            dst = wire.sequence_set(b for _, b in result.pairs)
            code = f"COPYUID {result.uidvalidity} {src} {dst}"
        if move:
            # RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK
            if code:
                self.untagged(f"OK [{code}] Moved")
            sel.ghosts.update(a for a, _ in result.pairs)
            self._announce_expunges(sel)
            return "OK", "MOVE completed", None
        return "OK", "COPY completed", code

    # ---- sequence sets and search keys ----------------------------------------------------------
    def _resolve(self, seqs: p.SequenceSet, uid: bool) -> list[tuple[int, int]]:
        """(sequence number, UID) pairs addressed by a sequence set, ascending, without duplicates."""
        sel = self._sel()
        uids = sel.uids
        count = len(uids)
        spans: list[tuple[int, int]] = []  # index ranges, inclusive
        for low, high in seqs.ranges:
            if uid:
                top = uids.last()
                a = top if low is None else low
                b = top if high is None else high
                a, b = min(a, b), max(a, b)
                i = uids.bisect_left(a)
                j = uids.bisect_right(b) - 1
            else:
                a = count if low is None else low
                b = count if high is None else high
                a, b = min(a, b), max(a, b)
                i, j = a - 1, min(b, count) - 1
            if i <= j and i < count:
                spans.append((i, j))
        if not spans:
            return []
        spans.sort()
        merged = [spans[0]]
        for i, j in spans[1:]:
            if i <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], j))
            else:
                merged.append((i, j))
        return [(k, uid) for i, j in merged for k, uid in enumerate(uids.between(i, j), i + 1)]

    def _uid_ranges(self, pairs: list[tuple[int, int]]) -> sk.UidSet:
        """Consecutive sequence numbers map to UID ranges (the UID list has no gaps a message could fill)."""
        ranges: list[tuple[int, int | None]] = []
        start = prev = None
        for seq, _uid in pairs:
            if start is not None and seq == prev + 1:
                prev = seq
                continue
            if start is not None:
                ranges.append((self._sel().uids[start - 1], self._sel().uids[prev - 1]))
            start = prev = seq
        if start is not None:
            ranges.append((self._sel().uids[start - 1], self._sel().uids[prev - 1]))
        return sk.UidSet(tuple(ranges))

    def _resolve_key(self, key: sk.SearchKey) -> sk.SearchKey:
        sel = self._sel()
        if isinstance(key, p.SeqSetKey):
            return self._uid_ranges(self._resolve(key.seqs, uid=False))
        if isinstance(key, p.UidSetKey):
            return self._uid_ranges(self._resolve(key.uids, uid=True))
        if isinstance(key, p.RecentKey):
            return self._uid_ranges([(sel.seq_of(u), u) for u in sorted(sel.recent) if sel.seq_of(u)])
        if isinstance(key, sk.Not):
            return sk.Not(self._resolve_key(key.key))
        if isinstance(key, sk.And):
            return sk.And(tuple(self._resolve_key(k) for k in key.keys))
        if isinstance(key, sk.Or):
            return sk.Or(self._resolve_key(key.left), self._resolve_key(key.right))
        return key

    # ---- flags ----------------------------------------------------------------------------------
    _flag_cache: dict[tuple[frozenset[str], bool, bool], bytes] = {}  # noqa: RUF012 - shared by design

    def _flags(self, flags: frozenset[str], recent: bool) -> bytes:
        key = (flags, recent and not self.rev2, self.utf8)
        cached = self._flag_cache.get(key)
        if cached is None:
            ordered = [f for f in _SYSTEM_ORDER if f in flags] + sorted(f for f in flags if f not in SYSTEM_FLAGS)
            if key[1]:
                ordered.append("\\Recent")
            cached = wire.flag_list(ordered)
            if len(self._flag_cache) < 10_000:
                self._flag_cache[key] = cached
        return cached

    _flag_text_cache: dict[tuple[frozenset[str], bool], str] = {}  # noqa: RUF012 - shared by design

    def _flags_text(self, flags: frozenset[str], recent: bool) -> str:
        key = (flags, recent and not self.rev2)
        cached = self._flag_text_cache.get(key)
        if cached is None:
            ordered = [f for f in _SYSTEM_ORDER if f in flags] + sorted(f for f in flags if f not in SYSTEM_FLAGS)
            if key[1]:
                ordered.append("\\Recent")
            cached = "(" + " ".join(ordered) + ")"
            if len(self._flag_text_cache) < 10_000:
                self._flag_text_cache[key] = cached
        return cached

    # ---- updates from elsewhere -----------------------------------------------------------------
    async def catch_up(self, *, poll: bool, expunge_ok: bool, first: ev.ChangeEvent | None = None) -> None:
        """Absorb pending change events (and with ``poll``, check the folder's MODSEQ), then announce."""
        sub, sel = self.sub, self.sel
        if sub is None:
            return
        events = [first] if first is not None else []
        while True:
            try:
                events.append(sub.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if sel is None:
            return
        resync = poll or sub.overflowed
        sub.overflowed = False
        for event in events:
            folder_id = getattr(event, "folder_id", None)
            if folder_id != sel.folder_id or resync:
                continue
            assert isinstance(event, ev.MessagesAdded | ev.FlagsChanged | ev.MessagesExpunged)
            if event.modseq <= sel.modseq:
                continue  # already reflected (our own change, or caught up by a resync)
            if event.modseq != sel.modseq + 1:
                resync = True  # a gap: something was missed or reordered; ask the store
                continue
            sel.modseq = event.modseq
            if event.modseq in sel.own:
                sel.own.discard(event.modseq)  # our own flag change, already reported
                continue
            if isinstance(event, ev.MessagesAdded):
                top = sel.max_uid()
                sel.uids.extend(u for u in sorted(event.uids) if u > top)
            elif isinstance(event, ev.MessagesExpunged):
                sel.ghosts.update(u for u in event.uids if sel.seq_of(u))
            else:
                for uid in event.uids:
                    if sel.seq_of(uid) and uid not in sel.ghosts:
                        sel.dirty[uid] = None
        if resync:
            await self._resync(sel)
        await self._announce(sel, expunge_ok)

    async def _resync(self, sel: Selected) -> None:
        assert self.mbox is not None
        mailbox = self.mbox.mailbox
        since = sel.modseq
        name = sel.name

        def load() -> tuple[Any, list[MessageInfo], list[int]]:
            folder = mailbox.folder(name)
            if folder.highestmodseq == since:
                return folder, [], []
            return folder, mailbox.messages(name, changed_since=since), mailbox.expunged_since(name, since)

        folder, changed, gone = await self.mbox.run(load)
        if folder.id != sel.folder_id or folder.uidvalidity != sel.uidvalidity:
            raise FolderNotFound(name)
        top = sel.max_uid()
        for info in changed:
            if info.uid > top:
                sel.uids.append(info.uid)
                top = info.uid
            elif sel.seq_of(info.uid) and info.uid not in sel.ghosts and info.modseq not in sel.own:
                sel.dirty[info.uid] = info
        sel.ghosts.update(u for u in gone if sel.seq_of(u))
        sel.modseq = max(sel.modseq, folder.highestmodseq)
        sel.own = {m for m in sel.own if m > sel.modseq}

    async def _announce(self, sel: Selected, expunge_ok: bool) -> None:
        if expunge_ok and sel.ghosts:
            self._announce_expunges(sel)
        if len(sel.uids) > sel.exists:
            if not sel.readonly and not self.rev2:
                # RFC 3501 §2.3.2: new messages are \Recent to the first session that learns of them.
                # Once a session of this process has claimed up to a UID, the others need not ask the
                # store (a thousand IDLE sessions would queue a thousand claims behind each new message).
                assert self.mbox is not None
                claimed = _CLAIMED.setdefault(self.mbox, {})
                if claimed.get(sel.folder_id, 0) < sel.max_uid():
                    claimed[sel.folder_id] = sel.max_uid()
                    sel.recent |= await self.mbox.claim_recent(sel.name)
            sel.exists = len(sel.uids)
            self.untagged(f"{sel.exists} EXISTS")
            if not self.rev2:
                self.untagged(f"{sum(1 for u in sel.recent if sel.seq_of(u))} RECENT")
        if sel.dirty:
            assert self.mbox is not None
            dirty, sel.dirty = sel.dirty, {}
            missing = [u for u, info in dirty.items() if info is None]
            if missing:
                for info in await self.mbox.messages(sel.name, missing):
                    dirty[info.uid] = info
            known = {k.lower() for k in sel.keywords}
            if any(f.lower() not in known for i in dirty.values() if i for f in i.flags if not f.startswith("\\")):
                # RFC 9051 §7.3.5: a keyword another session introduced is announced in FLAGS first
                sel.keywords = tuple(await self.mbox.keywords())
                self._flags_responses(sel)
            for uid in sorted(dirty):
                info = dirty[uid]
                seq = sel.seq_of(uid)
                if info is None or not seq or uid in sel.ghosts:
                    continue
                line = b"* %d FETCH (UID %d FLAGS " % (seq, uid) + self._flags(info.flags, uid in sel.recent)
                if self.condstore:
                    line += b" MODSEQ (%d)" % info.modseq
                self.out(line + b")\r\n")

    def _announce_expunges(self, sel: Selected) -> None:
        """EXPUNGE responses for every pending removal, highest sequence number first (RFC 9051 §7.5.1)."""
        if not sel.ghosts:
            return
        doomed = sorted((sel.seq_of(u) for u in sel.ghosts if sel.seq_of(u)), reverse=True)
        for seq in doomed:
            self.out(b"* %d EXPUNGE\r\n" % seq)
        gone = sel.ghosts
        sel.uids.remove(gone)
        sel.recent -= gone
        for uid in gone:
            sel.dirty.pop(uid, None)
        sel.exists -= len(doomed)
        sel.ghosts = set()

    def _selected_folder_vanished(self) -> None:
        # Deleted or renamed away by another session: nothing sensible is left to show.
        self.sel = None
        self.state = AUTHENTICATED
        self.untagged("OK [CLOSED] The selected mailbox was removed or renamed elsewhere")


class _Silent(Done):
    """The command has answered already (STARTTLS, autologout)."""

    def __init__(self) -> None:
        super().__init__("", "")


_AUTHENTICATED_COMMANDS: dict[str, Callable[..., Any]] = {
    "ENABLE": Session.cmd_enable,
    "SELECT": Session.cmd_select,
    "EXAMINE": Session.cmd_select,
    "CREATE": Session.cmd_create,
    "DELETE": Session.cmd_delete,
    "RENAME": Session.cmd_rename,
    "SUBSCRIBE": Session.cmd_subscribe,
    "UNSUBSCRIBE": Session.cmd_subscribe,
    "LIST": Session.cmd_list,
    "LSUB": Session.cmd_list,
    "NAMESPACE": Session.cmd_namespace,
    "STATUS": Session.cmd_status,
    "APPEND": Session.cmd_append,
    "IDLE": Session.cmd_idle,
    "GETQUOTA": Session.cmd_getquota,
    "GETQUOTAROOT": Session.cmd_getquotaroot,
    "SETQUOTA": Session.cmd_setquota,
}
_SELECTED_COMMANDS: dict[str, Callable[..., Any]] = {
    "CHECK": Session.cmd_check,
    "CLOSE": Session.cmd_close,
    "UNSELECT": Session.cmd_unselect,
    "EXPUNGE": Session.cmd_expunge,
    "UID EXPUNGE": Session.cmd_expunge,
    "SEARCH": Session.cmd_search,
    "FETCH": Session.cmd_fetch,
    "STORE": Session.cmd_store,
    "COPY": Session.cmd_copy,
    "MOVE": Session.cmd_copy,
}


class Fetcher:
    """FETCH over many messages: bulk store reads per chunk, one worker-thread hop each, streamed out."""

    def __init__(self, session: Session, sel: Selected, atts: list[p.FetchAtt], changed_since: int | None) -> None:
        self.s = session
        self.sel = sel
        self.atts = list(dict.fromkeys(atts))
        self.changed_since = changed_since
        kinds = {a.kind for a in self.atts}
        self.kinds = kinds
        self.sets_seen = not sel.readonly and any(a.kind in _SEEN_SETTING and not a.peek for a in self.atts)
        self.contents = [a for a in self.atts if a.kind in ("BODY[", "BINARY[", "BINARY.SIZE")]
        self.whole = "RFC822" in kinds or any(a.kind == "BODY[" and a.section == "" for a in self.atts)
        self.text_path = not self.contents and not kinds & {"RFC822", "RFC822.HEADER", "RFC822.TEXT"}
        self.cache: dict[tuple[str, int, bool], str] | None = None
        if self.text_path and not self.sets_seen and session.mbox is not None and kinds & set(_CACHEABLE):
            self.cache = _TEXT_CACHE.setdefault(session.mbox, {})

    async def run(self, targets: list[tuple[int, int]]) -> None:
        s, sel = self.s, self.sel
        assert s.mbox is not None
        mailbox = s.mbox.mailbox
        everything = len(targets) == len(sel.uids)
        name = sel.name
        changed_since = self.changed_since
        uids = [u for _, u in targets]

        folders = _INFO_CACHE.setdefault(s.mbox, {})

        def load_infos() -> list[MessageInfo]:
            if everything and changed_since is None:
                return _folder_infos(mailbox, name, folders)
            return mailbox.messages(name, None if everything else uids, changed_since=changed_since)

        infos = [i for i in await s.mbox.run(load_infos) if sel.seq_of(i.uid) and i.uid not in sel.ghosts]
        if not self.sets_seen:
            await self._stream(mailbox, list(self._chunks(infos)))
            return
        seen_changed: set[int] = set()
        for batch in self._chunks(infos):
            chunk = batch
            if self.sets_seen:
                unseen = [i.uid for i in chunk if "\\Seen" not in i.flags]
                if unseen:
                    # RFC 9051 §6.4.5: BODY[...] (not PEEK) sets \Seen; the new flags are reported
                    result = await s.mbox.store_flags(name, unseen, "add", ["\\Seen"])
                    if result.changed:
                        sel.note_own(result.changed[0].modseq)
                    updated = {i.uid: i for i in result.changed}
                    seen_changed.update(updated)
                    chunk = [updated.get(i.uid, i) for i in chunk]
            data = await s.mbox.run(self._load, mailbox, chunk)
            self._write(chunk, data, seen_changed)
            await s.conn.flush()

    async def _stream(self, mailbox: Any, batches: list[list[MessageInfo]]) -> None:
        """Read-only FETCH: the store loads the next batch while this one is written out (two at most)."""
        s = self.s
        assert s.mbox is not None
        pending: asyncio.Future[dict[str, Any]] | None = None
        try:
            known = [self._cached(batch) for batch in batches]
            for k, batch in enumerate(batches):
                if pending is None:
                    pending = asyncio.ensure_future(s.mbox.run(self._load, mailbox, batch, known[k]))
                data = await pending
                pending = None
                if k + 1 < len(batches):
                    pending = asyncio.ensure_future(s.mbox.run(self._load, mailbox, batches[k + 1], known[k + 1]))
                if self.text_path:
                    self._write_text(batch, data, known[k])
                else:
                    self._write(batch, data, set())
                await s.conn.flush()
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    def _chunks(self, infos: list[MessageInfo]) -> Iterable[list[MessageInfo]]:
        """Batches for one store hop each: up to FETCH_CHUNK messages, and when message content is
        asked for, up to FETCH_CHUNK_BYTES of it (one large message alone), so memory stays bounded
        whatever the client asks and however slowly it reads (output is flushed between batches)."""
        with_content = bool(self.contents) or bool(self.kinds & {"RFC822", "RFC822.TEXT"})
        chunk: list[MessageInfo] = []
        size = 0
        for info in infos:
            if chunk and (len(chunk) >= FETCH_CHUNK or (with_content and size + info.size > FETCH_CHUNK_BYTES)):
                yield chunk
                chunk, size = [], 0
            chunk.append(info)
            size += info.size
        if chunk:
            yield chunk

    def _cached(self, batch: list[MessageInfo]) -> dict[str, dict[int, str]]:
        """The batch's answers already in the text cache, per item (looked up on the event loop)."""
        found: dict[str, dict[int, str]] = {kind: {} for kind in _CACHEABLE}
        cache = self.cache
        if cache is None:
            return found
        utf8 = self.s.utf8
        for kind in _CACHEABLE:
            if kind in self.kinds:
                hits = found[kind]
                for info in batch:
                    text = cache.get((kind, info.body_id, utf8))
                    if text is not None:
                        hits[info.body_id] = text
        return found

    def _load(
        self, mailbox: Any, chunk: list[MessageInfo], known: dict[str, dict[int, str]] | None = None
    ) -> dict[str, Any]:
        """Runs on the mailbox's worker thread: every store read for one chunk."""
        body_ids = [i.body_id for i in chunk]
        kinds = self.kinds
        known = known or {}
        data: dict[str, Any] = {}
        if "ENVELOPE" in kinds:
            skip = known.get("ENVELOPE", {})
            data["ENVELOPE"] = mailbox.envelope_values([b for b in body_ids if b not in skip])
        if "BODYSTRUCTURE" in kinds:
            skip = known.get("BODYSTRUCTURE", {})
            data["BODYSTRUCTURE"] = mailbox.bodystructure_values(
                [b for b in body_ids if b not in skip], extensible=True
            )
        if "BODY" in kinds:
            data["BODY"] = mailbox.bodystructure_values(body_ids, extensible=False)
        if "RFC822.HEADER" in kinds or any(a.kind == "BODY[" and a.section == "HEADER" for a in self.contents):
            data["HEADER"] = mailbox.headers(body_ids)
        raw: dict[int, bytes] = {}
        if self.whole:
            raw = {b: mailbox.raw(b) for b in dict.fromkeys(body_ids)}
            data["RAW"] = raw
        if "RFC822.TEXT" in kinds:
            data["TEXT"] = {b: mailbox.section(b, "TEXT") for b in dict.fromkeys(body_ids)}
        for index, att in enumerate(self.contents):
            if att.kind == "BODY[" and att.section in ("", "HEADER"):
                continue
            found: dict[int, bytes | None] = {}
            for b in dict.fromkeys(body_ids):
                if att.kind == "BODY[":
                    found[b] = mailbox.section(b, att.section)
                else:
                    found[b] = mailbox.binary_section(b, att.section)
            data[f"C{index}"] = found
        return data

    def _write(self, chunk: list[MessageInfo], data: dict[str, Any], seen_changed: set[int]) -> None:
        if not self.contents and not self.kinds & {"RFC822", "RFC822.HEADER", "RFC822.TEXT"} and not seen_changed:
            self._write_text(chunk, data)
            return
        s, sel = self.s, self.sel
        utf8 = s.utf8
        out = s.conn.write
        atts = self.atts
        kinds = self.kinds
        add_flags = "FLAGS" not in kinds
        condstore = s.condstore
        lines: list[bytes] = []
        for info in chunk:
            seq = sel.seq_of(info.uid)
            if not seq:
                continue
            parts: list[bytes] = []
            for att in atts:
                kind = att.kind
                bid = info.body_id
                if kind == "UID":
                    parts.append(b"UID %d" % info.uid)
                elif kind == "FLAGS":
                    parts.append(b"FLAGS " + s._flags(info.flags, info.uid in sel.recent))
                elif kind == "INTERNALDATE":
                    parts.append(b"INTERNALDATE " + wire.date_time(info.internal_date))
                elif kind == "RFC822.SIZE":
                    parts.append(b"RFC822.SIZE %d" % info.size)
                elif kind == "MODSEQ":
                    parts.append(b"MODSEQ (%d)" % info.modseq)
                elif kind in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
                    parts.append(kind.encode() + b" " + wire.serialize(data[kind].get(bid), utf8))
                elif kind == "RFC822":
                    parts.append(b"RFC822 " + wire.literal(data["RAW"][bid]))
                elif kind == "RFC822.HEADER":
                    parts.append(b"RFC822.HEADER " + wire.literal(data["HEADER"].get(bid, b"")))
                elif kind == "RFC822.TEXT":
                    parts.append(b"RFC822.TEXT " + wire.literal(data["TEXT"].get(bid) or b""))
                else:
                    parts.append(self._content(att, info, data))
            if add_flags and info.uid in seen_changed:
                parts.append(b"FLAGS " + s._flags(info.flags, info.uid in sel.recent))
            if condstore and "MODSEQ" not in kinds and info.uid in seen_changed:
                parts.append(b"MODSEQ (%d)" % info.modseq)
            lines.append(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
        out(b"".join(lines))

    def _write_text(
        self, chunk: list[MessageInfo], data: dict[str, Any], known: dict[str, dict[int, str]] | None = None
    ) -> None:
        """Metadata only (FLAGS, dates, sizes, ENVELOPE, BODYSTRUCTURE...): one text, encoded once per chunk.

        The hot path of clients that list a folder: FETCH 1:* over thousands of messages.
        """
        s, sel = self.s, self.sel
        utf8 = s.utf8
        recent = sel.recent
        flags_text = s._flags_text
        serialize = wire.serialize_text
        date_text = wire.date_time_text
        makers: list[Callable[[MessageInfo], str]] = []
        for att in self.atts:
            kind = att.kind
            if kind == "UID":
                makers.append(lambda i: f"UID {i.uid}")
            elif kind == "FLAGS":
                makers.append(lambda i: "FLAGS " + flags_text(i.flags, i.uid in recent))
            elif kind == "INTERNALDATE":
                makers.append(lambda i: "INTERNALDATE " + date_text(i.internal_date))
            elif kind == "RFC822.SIZE":
                makers.append(lambda i: f"RFC822.SIZE {i.size}")
            elif kind == "MODSEQ":
                makers.append(lambda i: f"MODSEQ ({i.modseq})")
            elif kind in _CACHEABLE:
                makers.append(self._cacheable_maker(kind, data[kind], (known or {}).get(kind, {})))
            else:
                values = data[kind]
                makers.append(lambda i, k=kind, v=values: k + " " + serialize(v.get(i.body_id), utf8))
        uids = sel.uids
        position = uids.bisect_left(chunk[0].uid) if chunk else 0
        walk = uids.between(position, len(uids) - 1)
        current = next(walk, None)
        seq = position + 1
        lines: list[str] = []
        for info in chunk:
            # infos ascend like the UID map: walk both instead of searching the map for every message
            while current is not None and current < info.uid:
                current = next(walk, None)
                seq += 1
            if current != info.uid:
                continue
            lines.append(f"* {seq} FETCH ({' '.join([m(info) for m in makers])})\r\n")
        s.conn.write("".join(lines).encode("utf-8", "surrogateescape"))

    def _cacheable_maker(
        self, kind: str, values: dict[int, Any], known: dict[int, str]
    ) -> Callable[[MessageInfo], str]:
        utf8 = self.s.utf8
        cache = self.cache
        render = wire.envelope_text if kind == "ENVELOPE" else wire.serialize_text
        prefix = kind + " "

        def make(info: MessageInfo) -> str:
            text = known.get(info.body_id)
            if text is None:
                text = render(values.get(info.body_id), utf8)
                if cache is not None:
                    if len(cache) >= TEXT_CACHE_ENTRIES:
                        cache.clear()
                    cache[(kind, info.body_id, utf8)] = text
            return prefix + text

        return make

    def _content(self, att: p.FetchAtt, info: MessageInfo, data: dict[str, Any]) -> bytes:
        bid = info.body_id
        content_index = self.contents.index(att)
        if att.kind == "BODY[" and att.section == "":
            value: bytes | None = data["RAW"][bid]
        elif att.kind == "BODY[" and att.section == "HEADER":
            value = data["HEADER"].get(bid, b"")
        else:
            value = data[f"C{content_index}"].get(bid)
        if att.kind == "BINARY.SIZE":
            return b"BINARY.SIZE[%s] %d" % (att.echo.encode(), len(value or b""))
        name = b"BINARY[" if att.kind == "BINARY[" else b"BODY["
        head = name + att.echo.encode() + b"]"
        if att.partial is not None and value is not None:
            start, length = att.partial
            value = value[start : start + length]
            head += b"<%d>" % start
        if value is None:
            return head + b" NIL"
        if att.kind == "BINARY[":
            return head + b" " + wire.literal(value, binary=b"\x00" in value)
        return head + b" " + wire.literal(value)


def _canonical(name: str) -> str:
    parts = name.split(DELIMITER)
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def _pattern(pattern: str) -> Callable[[str], bool]:
    """LIST wildcards (RFC 9051 §6.3.9): "*" matches anything, "%" anything but the delimiter."""
    pattern = _canonical(pattern) if pattern.upper().startswith(INBOX) else pattern
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    compiled = re.compile(regex + r"\Z", re.DOTALL)
    return lambda name: compiled.match(name) is not None


def _uses_modseq(key: sk.SearchKey) -> bool:
    if isinstance(key, sk.ModSeq):
        return True
    if isinstance(key, sk.Not):
        return _uses_modseq(key.key)
    if isinstance(key, sk.And):
        return any(_uses_modseq(k) for k in key.keys)
    if isinstance(key, sk.Or):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    return False


def _bind(logger: Any, **context: Any) -> Any:
    bind = getattr(logger, "bind", None)
    return bind(**context) if bind else logger
