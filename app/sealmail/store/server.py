"""The store component: this data host's mailboxes for front-ends on other hosts (``sealmail serve store``).

It listens on ``store_port`` with TLS that requires a client certificate issued by ``store_ca_file``
(a host without one fails the handshake) and answers ``store.rpc`` requests over a WebSocket.

* A front-end session sends ``open`` with the mailbox id and its unwrapped keys; they live only in
  this process's memory for the life of that session's handle (the shared ``AsyncMailbox`` of the
  local ``MailStore``), and are forgotten at ``release`` or when the connection ends. Nothing here
  logs a request's arguments: only method names and error types.
* Every call on a mailbox runs on that mailbox's one worker thread, in arrival order (one writer;
  readers queue behind it), exactly as in-process sessions' calls do.
* Change events are published on the bus (Redis) after each commit as today, so IMAP sessions on
  every host see the changes.
* A DAV request's writes are one transaction here too: between ``dav_begin`` and ``dav_commit``
  (or ``dav_rollback``) a session's calls run inside one ``dav_transaction`` held on the mailbox's
  thread, so other sessions' calls wait behind it as they do in-process. A transaction whose
  front-end goes quiet for ``store_timeout`` seconds, or whose connection ends, is rolled back.
* Mailbox homes: the account services create and delete mailboxes here (``create_mailbox``,
  ``delete_mailbox``), and this store records itself (``store_host``) as the mailbox's home in the
  config store. ``open`` and ``deliver`` refuse a mailbox whose recorded home is another host
  (``MailboxElsewhere``), so several data hosts can share the mailboxes without two writers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import re
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from sealmail.crypto.keys import MailboxSecrets
from sealmail.net import redisconn
from sealmail.net.listen import close_all, listen_ports
from sealmail.store import events as ev
from sealmail.store import rpc
from sealmail.store.contract import MAILBOX_METHODS
from sealmail.store.errors import MailboxElsewhere
from sealmail.store.exclusive import MaildropLock
from sealmail.store.mailstore import AsyncMailbox, MailStore
from sealmail.store.model import Filing

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.store.server")
MAILBOX_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class MailboxHome(Protocol):
    @property
    def host(self) -> str: ...


class MailboxHomes(Protocol):
    """Where each mailbox lives (the config store meets this; ``store`` does not import ``config``)."""

    def get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None: ...

    def set_mailbox_home(self, mailbox_id: str, host: str) -> object: ...

    def remove_mailbox_home(self, mailbox_id: str) -> None: ...

    def close(self) -> None: ...


def _mailbox_id(value: Any) -> str:
    if not isinstance(value, str) or not MAILBOX_ID.fullmatch(value):
        raise rpc.CodecError("bad mailbox id")
    return value


def server_tls(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ with this host's certificate, requiring a client certificate from the deployment CA."""
    if settings.tls_cert_file is None or settings.tls_key_file is None or settings.store_ca_file is None:
        raise ValueError("the store component needs SEALMAIL_TLS_CERT_FILE, _TLS_KEY_FILE and _STORE_CA_FILE")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    context.load_verify_locations(cafile=settings.store_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    # No TLS 1.3 session tickets: nothing resumes here, and a blocking client (websockets' sync one,
    # reading on one thread while writing on another) could lose its request while a ticket was
    # being read, and wait out its whole timeout.
    context.num_tickets = 0
    return context


class _Rollback(Exception):
    """Ends a held transaction without committing it."""


_COMMIT = "commit"
_ROLLBACK = "rollback"
_Call = tuple[str, list[Any], dict[str, Any], "concurrent.futures.Future[Any]"]


class _HeldTransaction:
    """One session's DAV transaction, held open on the mailbox's thread between ``dav_begin`` and
    ``dav_commit``/``dav_rollback``; the session's calls meanwhile run inside it, in order."""

    def __init__(self, handle: AsyncMailbox, idle_timeout: float) -> None:
        self.handle = handle
        self.idle_timeout = idle_timeout
        self.calls: queue.SimpleQueue[_Call | str] = queue.SimpleQueue()
        self.task: asyncio.Future[None] = asyncio.ensure_future(handle.run(self._hold))

    def _hold(self) -> None:
        mailbox = self.handle.mailbox
        with mailbox.dav_transaction():
            while True:
                try:
                    item = self.calls.get(timeout=self.idle_timeout)
                except queue.Empty:
                    raise _Rollback("the front-end went quiet inside a transaction") from None
                if item == _COMMIT:
                    return
                if item == _ROLLBACK:
                    raise _Rollback()
                assert not isinstance(item, str)
                method, args, kwargs, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(getattr(mailbox, method)(*args, **kwargs))
                except Exception as exc:  # that call's savepoint is undone; the request decides
                    future.set_exception(exc)

    async def call(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if self.task.done():
            raise rpc.RemoteError("the transaction ended (rolled back)")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.calls.put((method, args, kwargs, future))
        return await asyncio.wrap_future(future)

    async def finish(self, commit: bool) -> None:
        self.calls.put(_COMMIT if commit else _ROLLBACK)
        try:
            await self.task
        except _Rollback:
            if commit:
                raise rpc.RemoteError("the transaction was rolled back (the front-end went quiet)") from None


class _Channel:
    """One front-end connection: its open mailbox sessions, released when it ends."""

    def __init__(self, store: StoreServer, ws: ServerConnection) -> None:
        self.store = store
        self.ws = ws
        self.sessions: dict[str, AsyncMailbox] = {}
        self.leases: dict[str, MaildropLock] = {}  # the POP3 locks this connection's sessions hold
        self.transactions: dict[str, _HeldTransaction] = {}  # open DAV transactions, by session
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            async for message in self.ws:
                task = asyncio.create_task(self._answer(message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for transaction in self.transactions.values():
                await transaction.finish(commit=False)  # half a request is never committed
            self.transactions.clear()
            for lease in self.leases.values():
                await lease.release()  # a front-end that went away lets go of its maildrops
            self.leases.clear()
            for handle in self.sessions.values():
                await handle.release()  # the last user's release forgets the keys
            self.sessions.clear()

    async def _answer(self, message: str | bytes) -> None:
        call_id: int | None = None
        try:
            frame = rpc.loads(message)
            call_id = frame.get("id") if isinstance(frame.get("id"), int) else None
            result = await self._dispatch(frame)
            reply = rpc.reply_ok(call_id or 0, result)
        except (rpc.CodecError, rpc.MethodNotAllowed, TypeError) as exc:
            log.warning("refused a request: %s", type(exc).__name__)
            reply = rpc.reply_error(call_id, exc if not isinstance(exc, TypeError) else rpc.CodecError("bad arguments"))
        except Exception as exc:
            if type(exc).__name__ not in rpc.ERRORS:
                log.exception("a store call failed")
            reply = rpc.reply_error(call_id, exc)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(reply)

    async def _dispatch(self, frame: dict[str, Any]) -> Any:
        method, session = frame.get("method"), frame.get("session")
        args, kwargs = frame.get("args"), frame.get("kwargs")
        if not isinstance(method, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
            raise rpc.CodecError("malformed request")
        if session is None:
            extension = self.store.extensions.get(method)
            if extension is not None:
                return await extension(*args, **kwargs)
            if method not in rpc.STORE_METHODS:
                raise rpc.MethodNotAllowed(f"{method[:40]!r} is not a store method")
            return await getattr(self, f"_store_{method}")(*args, **kwargs)
        if not isinstance(session, str) or method not in rpc.SESSION_METHODS:
            raise rpc.MethodNotAllowed(f"{str(method)[:40]!r} is not a mailbox method")
        handle = self.sessions.get(session)
        if handle is None:
            raise rpc.MethodNotAllowed("no such session")
        transaction = self.transactions.get(session)
        if transaction is not None and method in MAILBOX_METHODS:
            return await transaction.call(method, args, kwargs)
        if method in MAILBOX_METHODS or method == "drain":
            if transaction is not None:  # the request's transaction ends first
                await self._end_transaction(session, commit=False)
            return await getattr(handle, method)(*args, **kwargs)
        return await self._control(session, handle, method)

    async def _control(self, session: str, handle: AsyncMailbox, method: str) -> Any:
        """The session calls outside the mailbox contract: transactions, the POP3 lock, release."""
        if method in ("dav_commit", "dav_rollback"):
            if session not in self.transactions:
                raise rpc.MethodNotAllowed("no transaction is open")
            await self._end_transaction(session, commit=method == "dav_commit")
            return None
        if method == "dav_begin":
            if session in self.transactions:
                raise rpc.MethodNotAllowed("a transaction is open already")
            self.transactions[session] = _HeldTransaction(handle, self.store.settings.store_timeout)
            return None
        if session in self.transactions:  # release, locks: the request's transaction ends first
            await self._end_transaction(session, commit=False)
        if method == "lock_maildrop":
            if session not in self.leases:
                lease = await self.store.mailstore.lock_maildrop(handle)
                if lease is None:
                    return False
                self.leases[session] = lease
            return True
        await self._unlock(session)  # unlock_maildrop, or release
        if method == "release":
            del self.sessions[session]
            await handle.release()
        return None

    async def _end_transaction(self, session: str, *, commit: bool) -> None:
        await self.transactions.pop(session).finish(commit=commit)

    async def _unlock(self, session: str) -> None:
        lease = self.leases.pop(session, None)
        if lease is not None:
            await lease.release()

    # ---- calls on the store itself ---------------------------------------------------------------
    async def _store_open(self, mailbox_id: str, mailbox_key: bytes, private_key: bytes, *, quota: Any = None) -> str:
        mailbox_id = _mailbox_id(mailbox_id)
        if not isinstance(mailbox_key, bytes) or not isinstance(private_key, bytes):
            raise rpc.CodecError("bad keys")
        if quota is not None and not isinstance(quota, int):
            raise rpc.CodecError("bad quota")
        await self.store.check_home(mailbox_id)
        handle = await self.store.mailstore.open(mailbox_id, MailboxSecrets(mailbox_key, private_key), quota=quota)
        session = secrets.token_urlsafe(16)
        self.sessions[session] = handle
        return session

    async def _store_deliver(
        self, mailbox_id: str, public_key: bytes, raw: Any, received_at: Any = None, folder: Any = "INBOX"
    ) -> int:
        mailbox_id = _mailbox_id(mailbox_id)
        if not isinstance(folder, str | Filing):  # a folder, or a Sieve script's filing (``model.Filing``)
            raise rpc.CodecError("bad folder")
        await self.store.check_home(mailbox_id)
        loop = asyncio.get_running_loop()
        mailstore = self.store.mailstore
        return await loop.run_in_executor(None, mailstore.deliver, mailbox_id, public_key, raw, received_at, folder)

    async def _store_deliver_sealed(self, mailbox_id: str, entry_id: str, sealed: bytes) -> int:
        """A record an MX sealed, appended once per entry id, then announced to sessions."""
        if not isinstance(mailbox_id, str) or not MAILBOX_ID.fullmatch(mailbox_id):
            raise rpc.CodecError("bad mailbox id")
        if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id) or not isinstance(sealed, bytes):
            raise rpc.CodecError("bad entry")
        await self.store.check_home(mailbox_id)
        mailstore = self.store.mailstore
        seq = await asyncio.to_thread(mailstore.deliver_sealed, mailbox_id, entry_id, sealed)
        await mailstore.spool_appended(mailbox_id)
        return seq

    async def _store_spool_appended(self, mailbox_id: str) -> None:
        await self.store.mailstore.spool_appended(mailbox_id)

    async def _store_spool_size(self, mailbox_id: str) -> int:
        mailbox_id = _mailbox_id(mailbox_id)
        return await asyncio.to_thread(self.store.mailstore.spool_size, mailbox_id)

    async def _store_create_mailbox(self, mailbox_id: str, mailbox_key: bytes) -> str | None:
        """A new, empty mailbox file here, recorded as living on this host; returns this host's name."""
        mailbox_id = _mailbox_id(mailbox_id)
        if not isinstance(mailbox_key, bytes):
            raise rpc.CodecError("bad keys")
        await asyncio.to_thread(self.store.mailstore.create, mailbox_id, mailbox_key)
        await self.store.record_home(mailbox_id)
        return self.store.settings.store_host

    async def _store_delete_mailbox(self, mailbox_id: str) -> None:
        """A mailbox's files and spool gone from here (the alias is gone, or its keys were reset)."""
        mailbox_id = _mailbox_id(mailbox_id)
        await self.store.check_home(mailbox_id)
        await asyncio.to_thread(self.store.mailstore.delete, mailbox_id)
        await self.store.forget_home(mailbox_id)


Extension = Callable[..., Awaitable[Any]]


class StoreServer:
    """The listeners and this host's ``MailStore`` (files under ``data_dir``, events on the bus).

    ``extensions``: further calls on the store itself (``session`` null), by method name, that
    other parts of the data host offer through the same channel (the shared job queue,
    ``queue.service``); only the names given here are answered."""

    def __init__(
        self,
        settings: Settings,
        tls: ssl.SSLContext | None = None,
        extensions: Mapping[str, Extension] | None = None,
        homes: MailboxHomes | None = None,
    ) -> None:
        self.settings = settings
        self.extensions: Mapping[str, Extension] = extensions or {}
        self.tls = tls or server_tls(settings)
        self.homes = homes
        # Plain Redis or through Sentinel (net.redisconn): in Sentinel mode the events go to the
        # master the sentinels name, where the front-ends' subscribers are, not to the URL's node.
        found = redisconn.connector(settings)
        if found is not None:
            self.bus: ev.ChangeBus = ev.RedisBus(found)
        else:
            self.bus = ev.InProcessBus()  # a store on its own (tests): nobody else hears its events
        self.mailstore = MailStore(settings.data_dir, self.bus)
        self._servers: list[Server] = []
        self._channels: set[asyncio.Task[None]] = set()

    # ---- mailbox homes ------------------------------------------------------------------------------
    async def check_home(self, mailbox_id: str) -> None:
        """``MailboxElsewhere`` when the config store records another host as the mailbox's home."""
        if self.homes is None:
            return
        home = await asyncio.to_thread(self.homes.get_mailbox_home, mailbox_id)
        if home is not None and home.host != self.settings.store_host:
            here = self.settings.store_host or "a data host without SEALMAIL_STORE_HOST"
            raise MailboxElsewhere(
                f"mailbox {mailbox_id} lives on data host {home.host!r}, not here ({here}): refusing to open "
                "or write it, so that it has one writer"
            )

    async def record_home(self, mailbox_id: str) -> None:
        if self.homes is not None and self.settings.store_host:
            await asyncio.to_thread(self.homes.set_mailbox_home, mailbox_id, self.settings.store_host)

    async def forget_home(self, mailbox_id: str) -> None:
        if self.homes is not None:
            await asyncio.to_thread(self.homes.remove_mailbox_home, mailbox_id)

    async def _handler(self, ws: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._channels.add(task)
        try:
            await _Channel(self, ws).run()
        finally:
            self._channels.discard(task)

    async def listen(self, sockets: list[socket.socket]) -> int:
        try:
            for sock in sockets:
                server = await serve(
                    self._handler,
                    sock=sock,
                    ssl=self.tls,
                    max_size=rpc.MAX_FRAME,
                    compression=None,
                    # A front-end waits store_timeout for its handshake: on a loaded host the
                    # library's 10 s would close the connection before the client gives up, and
                    # the client would see a broken handshake (InvalidMessage) instead of an answer.
                    open_timeout=self.settings.store_timeout,
                    ping_interval=20,
                    ping_timeout=20,
                )
                self._servers.append(server)
        except BaseException:
            close_all(sockets)
            raise
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        await self.mailstore.close()
        await self.bus.close()
        if self.homes is not None:
            self.homes.close()


class StoreComponent:
    """``homes`` opens the config store's mailbox homes (``datahost`` passes it)."""

    def __init__(self, settings: Settings, homes: Callable[[], MailboxHomes] | None = None) -> None:
        self.settings = settings
        self.homes = homes
        self.server: StoreServer | None = None

    def extensions(self) -> Mapping[str, Extension]:
        """The data host's further calls (``datahost.DataHostComponent`` adds the job queue)."""
        return {}

    async def start(self) -> dict[str, int]:
        homes = await asyncio.to_thread(self.homes) if self.homes is not None else None
        self.server = StoreServer(self.settings, extensions=self.extensions(), homes=homes)
        bound = listen_ports(self.settings, {"store": self.settings.store_port})
        return {"store": await self.server.listen(bound["store"])}

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.close()
