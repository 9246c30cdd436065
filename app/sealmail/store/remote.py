"""Mailboxes on a data host, reached through its store component (``store.server``) over ``store.rpc``.

``AppContext`` uses ``RemoteMailStore`` instead of the in-process ``MailStore`` when ``store_url``
is set. It meets the same contract (``store.contract``):

* one WebSocket per process, over mutual TLS (``store_ca_file``, ``store_client_cert_file``), shared
  by every session; calls are multiplexed by request id;
* ``open`` sends the session's unwrapped keys inside that channel; the handle keeps them in memory
  (as an in-process handle does) so that after a reconnect it opens its session again by itself;
* a lost, refused or silent connection makes the calls in flight and the next ones raise
  ``StoreUnavailable`` (IMAP ``NO [UNAVAILABLE]``, POP3 ``-ERR [SYS/TEMP]``, DAV 503); the next call
  after that dials again, so service comes back without anyone restarting anything;
* ``handle.run(fn)`` runs ``fn`` on the handle's own thread, where ``handle.mailbox`` answers the
  blocking API by waiting for the event loop's calls (each one a round trip); ``dav_transaction``
  holds one transaction open on the data host for the calls inside it (``dav_begin`` ..
  ``dav_commit``), so a DAV request's checks and writes are atomic there as they are in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect as connect_blocking

from sealmail.crypto.keys import MailboxSecrets
from sealmail.crypto.sealed import Buffer
from sealmail.store import rpc
from sealmail.store.dav import DavCollection, DavItem, DavLimits, NewItem
from sealmail.store.errors import StoreUnavailable
from sealmail.store.model import (
    INBOX,
    AppendResult,
    CopyResult,
    DrainResult,
    Filing,
    Folder,
    FolderStatus,
    LearnJob,
    Maildrop,
    MessageInfo,
    StoreMode,
    StoreResult,
)
from sealmail.store.ordering import SortCriterion, ThreadMessage
from sealmail.store.search import SearchKey
from sealmail.store.sections import ImapValue

if TYPE_CHECKING:
    from sealmail.settings import Settings
    from sealmail.store.contract import MailboxHandle

log = logging.getLogger("sealmail.store.remote")
T = TypeVar("T")
P = ParamSpec("P")


def client_tls(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """Verify the store with the deployment CA and present this host's client certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def call_once(settings: Settings, method: str, *args: Any, url: str | None = None, **kwargs: Any) -> Any:
    """One call on the store itself over a connection of its own, from blocking code (the CLI, the
    account services: creating and deleting mailboxes). ``StoreUnavailable`` when it cannot be reached.
    ``url``: another data host's store (``store_urls``) than ``store_url``'s."""
    url = url or settings.store_url
    assert url is not None
    assert settings.store_ca_file is not None
    assert settings.store_client_cert_file is not None
    assert settings.store_client_key_file is not None
    tls = client_tls(settings.store_ca_file, settings.store_client_cert_file, settings.store_client_key_file)
    try:
        with connect_blocking(
            url,
            ssl=tls,
            max_size=rpc.MAX_FRAME,
            compression=None,
            open_timeout=settings.store_timeout,
            close_timeout=2,
        ) as ws:
            ws.send(rpc.request(1, None, method, args, kwargs))
            frame = rpc.loads(ws.recv(timeout=settings.store_timeout))
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
        raise StoreUnavailable(f"the mailbox store cannot be reached ({type(exc).__name__})") from exc
    if "error" in frame:
        raise rpc.error_of(frame["error"])
    return frame.get("ok")


class SilentBackoff:
    """After a dial or reply that timed out (the data host is silent, not refusing), calls fail at
    once for a while instead of each waiting its own timeout: 1 s, doubling up to 30 s, reset by
    the next success. Shared by the mailbox client here and the config client (``config.remote``)."""

    def __init__(self) -> None:
        self._until = 0.0
        self._backoff = 0.0

    def remaining(self) -> float:
        return self._until - time.monotonic()

    def silent(self) -> None:
        self._backoff = min(max(2 * self._backoff, 1.0), 30.0)
        self._until = time.monotonic() + self._backoff

    def answered(self) -> None:
        self._backoff = 0.0


class _Link:
    """One WebSocket to the store and the calls waiting for their replies on it."""

    def __init__(self, ws: ClientConnection, generation: int) -> None:
        self.ws = ws
        self.generation = generation
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.alive = True


class RemoteMailStore:
    """The ``MailStoreAPI`` of a data host's store component at ``url``."""

    def __init__(self, url: str, tls: ssl.SSLContext, *, timeout: float = 30.0) -> None:
        self.url = url
        self.tls = tls
        self.timeout = timeout
        self._link: _Link | None = None
        self._generation = 0
        self._ids = itertools.count(1)
        # One dial at a time, its outcome shared by every caller waiting for it (a silent store
        # would otherwise cost each waiting caller its own full timeout, one after the other).
        self._dialing: asyncio.Task[_Link] | None = None
        # After a dial that timed out (the store's host is silent, not refusing), calls fail at once
        # until then: the MX moves on to its outbox instead of waiting again; doubles up to 30 s.
        self._quiet = SilentBackoff()
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteMailStore:
        assert settings.store_url is not None
        assert settings.store_ca_file is not None
        assert settings.store_client_cert_file is not None
        assert settings.store_client_key_file is not None
        tls = client_tls(settings.store_ca_file, settings.store_client_cert_file, settings.store_client_key_file)
        return cls(settings.store_url, tls, timeout=settings.store_timeout)

    # ---- the channel ------------------------------------------------------------------------------
    async def link(self) -> _Link:
        """The live connection, dialled now if there is none (``StoreUnavailable`` if that fails)."""
        link = self._link
        if link is not None and link.alive:
            return link
        self._loop = asyncio.get_running_loop()
        dialing = self._dialing
        if dialing is None or dialing.done():
            wait = self._quiet.remaining()
            if wait > 0:
                raise StoreUnavailable(f"the mailbox store did not answer; trying it again in {wait:.0f} s")
            dialing = self._dialing = asyncio.create_task(self._dial(), name="sealmail-store-dial")
            # Its failure is every waiter's; retrieved here too, in case all of them gave up.
            dialing.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(dialing)

    async def _dial(self) -> _Link:
        try:
            ws = await asyncio.wait_for(
                connect(
                    self.url,
                    ssl=self.tls,
                    max_size=rpc.MAX_FRAME,
                    compression=None,
                    open_timeout=None,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                ),
                self.timeout,
            )
        except TimeoutError as exc:
            self._quiet.silent()
            raise StoreUnavailable("the mailbox store did not answer in time") from exc
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise StoreUnavailable(f"the mailbox store cannot be reached ({type(exc).__name__})") from exc
        self._quiet.answered()
        self._generation += 1
        link = _Link(ws, self._generation)
        link.reader = asyncio.create_task(self._read(link), name="sealmail-store-link")
        self._link = link
        log.info("connected to the mailbox store")
        return link

    async def _read(self, link: _Link) -> None:
        try:
            async for message in link.ws:
                try:
                    frame = rpc.loads(message)
                except rpc.CodecError:
                    log.warning("the store sent a frame this client cannot read; closing the link")
                    break
                frame_id = frame.get("id")
                future = link.pending.pop(frame_id, None) if isinstance(frame_id, int) else None
                if future is None or future.done():
                    continue
                if "error" in frame:
                    future.set_exception(rpc.error_of(frame["error"]))
                else:
                    future.set_result(frame.get("ok"))
        except ConnectionClosed:
            pass
        finally:
            link.alive = False
            if self._link is link:
                self._link = None
            for future in link.pending.values():
                if not future.done():
                    future.set_exception(StoreUnavailable("the connection to the mailbox store was lost"))
            link.pending.clear()
            with contextlib.suppress(Exception):
                await link.ws.close()
            log.warning("the connection to the mailbox store ended; the next call dials again")

    async def call_on(self, link: _Link, session: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request on ``link`` and its decoded reply (its error raised as itself)."""
        if not link.alive:
            raise StoreUnavailable("the connection to the mailbox store was lost")
        call_id = next(self._ids)
        frame = rpc.request(call_id, session, method, args, kwargs)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        link.pending[call_id] = future
        try:
            await link.ws.send(frame)
        except ConnectionClosed as exc:
            link.pending.pop(call_id, None)
            raise StoreUnavailable("the connection to the mailbox store was lost") from exc
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            link.pending.pop(call_id, None)
            raise StoreUnavailable("the mailbox store did not answer in time") from exc

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.call_on(await self.link(), None, method, *args, **kwargs)

    def blocking(self, coro_fn: Callable[[], Any]) -> Any:
        """Run ``coro_fn()`` on the event loop from another thread and wait for it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise StoreUnavailable("the mailbox store client has no running event loop")
        try:
            if asyncio.get_running_loop() is loop:
                raise RuntimeError("a blocking store call on the event loop's own thread")
        except RuntimeError as exc:
            if "blocking store call" in str(exc):
                raise
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result()

    # ---- MailStoreAPI -------------------------------------------------------------------------------
    async def open(self, mailbox_id: str, secrets: MailboxSecrets, *, quota: int | None = None) -> RemoteMailbox:
        handle = RemoteMailbox(self, mailbox_id, secrets, quota)
        await handle.session()
        return handle

    def deliver(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        """Seal on the data host (called from a worker thread, as the MX does)."""
        pieces = [raw] if isinstance(raw, (bytes, bytearray, memoryview)) else list(raw)
        result: int = self.blocking(
            lambda: self.call("deliver", mailbox_id, public_key, [bytes(p) for p in pieces], received_at, folder)
        )
        return result

    async def deliver_async(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        pieces = [raw] if isinstance(raw, (bytes, bytearray, memoryview)) else list(raw)
        seq: int = await self.call("deliver", mailbox_id, public_key, [bytes(p) for p in pieces], received_at, folder)
        await self.spool_appended(mailbox_id)
        return seq

    def deliver_sealed(self, mailbox_id: str, entry_id: str, sealed: bytes) -> int:
        """Hand a record sealed here to the data host's spool (which announces it to sessions)."""
        seq: int = self.blocking(lambda: self.call("deliver_sealed", mailbox_id, entry_id, sealed))
        return seq

    async def spool_appended(self, mailbox_id: str) -> None:
        await self.call("spool_appended", mailbox_id)

    async def lock_maildrop(self, handle: MailboxHandle) -> RemoteLease | None:
        """The data host's store takes the POP3 lock for this handle's session (``store.exclusive``):
        it holds against sessions on every front-end, and ends with the session or its connection."""
        assert isinstance(handle, RemoteMailbox)
        if not await handle._call("lock_maildrop"):
            return None
        handle._holds_lock = True
        return RemoteLease(handle)

    def spool_size(self, mailbox_id: str) -> int:
        size: int = self.blocking(lambda: self.call("spool_size", mailbox_id))
        return size

    async def close(self) -> None:
        if self._dialing is not None and not self._dialing.done():
            self._dialing.cancel()
        link, self._link = self._link, None
        if link is not None:
            link.alive = False
            await link.ws.close()
            if link.reader is not None:
                with contextlib.suppress(BaseException):
                    await link.reader


class RemoteLease:
    """The POP3 lock the store holds for one remote session (``RemoteMailStore.lock_maildrop``)."""

    def __init__(self, handle: RemoteMailbox) -> None:
        self._handle: RemoteMailbox | None = handle

    async def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None or not handle._holds_lock:
            return
        handle._holds_lock = False
        current = handle._session
        if current is not None and current[0].alive and not handle._released:
            with contextlib.suppress(StoreUnavailable):  # a lost connection released it already
                await handle._store.call_on(current[0], current[1], "unlock_maildrop")


class RemoteMailbox:
    """A session's ``MailboxHandle`` on a mailbox of the data host."""

    def __init__(self, store: RemoteMailStore, mailbox_id: str, secrets: MailboxSecrets, quota: int | None) -> None:
        self._store = store
        self.mailbox_id = mailbox_id
        self._secrets = secrets
        self.quota = quota
        self._session: tuple[_Link, str] | None = None
        self._opening = asyncio.Lock()
        self._released = False
        self._holds_lock = False  # the POP3 maildrop lock, taken again if the session is reopened
        self._transaction: tuple[_Link, str] | None = None  # the session a DAV transaction is open on
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self.mailbox = RemoteMailboxOps(self)

    @property
    def home(self) -> RemoteMailStore:
        """The data host's store this handle's session lives on."""
        return self._store

    async def session(self) -> tuple[_Link, str]:
        """This handle's session on the live link, opened (again, after a reconnect) if need be."""
        if self._released:
            raise StoreUnavailable("this mailbox handle was released")
        current = self._session
        if current is not None and current[0].alive:
            return current
        async with self._opening:
            current = self._session
            if current is not None and current[0].alive:
                return current
            link = await self._store.link()
            secrets = self._secrets
            session_id = await self._store.call_on(
                link, None, "open", self.mailbox_id, secrets.mailbox_key, secrets.private_key, quota=self.quota
            )
            if not isinstance(session_id, str):
                raise rpc.RemoteError("the store answered open without a session")
            if self._holds_lock and not await self._store.call_on(link, session_id, "lock_maildrop"):
                # Another session took the maildrop while the store was away: this one cannot go on.
                self._holds_lock = False
                with contextlib.suppress(StoreUnavailable):
                    await self._store.call_on(link, session_id, "release")
                raise StoreUnavailable("the maildrop lock was lost while the mailbox store was away")
            self._session = (link, session_id)
            return self._session

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        link, session_id = await self.session()
        if self._transaction is not None and self._transaction != (link, session_id):
            # The store rolled the transaction back when the connection ended: nothing of it stayed.
            raise StoreUnavailable("the connection to the mailbox store was lost during a DAV request")
        return await self._store.call_on(link, session_id, method, *args, **kwargs)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The blocking calls inside run in one transaction on the data host (from the handle's thread)."""
        if self._transaction is not None:  # nested: part of the open one
            yield
            return

        async def begin() -> None:
            link, session_id = await self.session()
            await self._store.call_on(link, session_id, "dav_begin")
            self._transaction = (link, session_id)

        self._store.blocking(begin)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection rolled it back already
                self.blocking("dav_rollback")
            self._transaction = None
            raise
        try:
            self.blocking("dav_commit")
        finally:
            self._transaction = None

    def blocking(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A call from the handle's thread (``run``), answered by the event loop."""
        return self._store.blocking(lambda: self._call(method, *args, **kwargs))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the handle's own thread (one at a time, in call order)."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rbox-{self.mailbox_id[:6]}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def drain(self) -> DrainResult:
        result: DrainResult = await self._call("drain")
        return result

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        current, self._session = self._session, None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if current is not None and current[0].alive:
            with contextlib.suppress(StoreUnavailable):
                await self._store.call_on(current[0], current[1], "release")

    # ---- the contract's mailbox calls (each one request) ---------------------------------------------
    async def list_folders(self) -> list[Folder]:
        return await self._call("list_folders")

    async def folder(self, name: str) -> Folder:
        return await self._call("folder", name)

    async def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        return await self._call("create_folder", name, special_use)

    async def delete_folder(self, name: str) -> None:
        return await self._call("delete_folder", name)

    async def rename_folder(self, old: str, new: str) -> None:
        return await self._call("rename_folder", old, new)

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        return await self._call("set_subscribed", name, subscribed)

    async def subscriptions(self) -> list[str]:
        return await self._call("subscriptions")

    async def status(self, name: str) -> FolderStatus:
        return await self._call("status", name)

    async def usage(self) -> int:
        return await self._call("usage")

    async def keywords(self) -> list[str]:
        return await self._call("keywords")

    async def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult:
        return await self._call("append", folder, raw, flags, internal_date, enforce_quota=enforce_quota)

    async def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        return await self._call("append_many", folder, items, enforce_quota=enforce_quota)

    async def uids(self, folder: str) -> list[int]:
        return await self._call("uids", folder)

    async def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        return await self._call("messages", folder, uids, changed_since=changed_since)

    async def maildrop(self, folder: str = INBOX) -> Maildrop:
        return await self._call("maildrop", folder)

    async def expunged_since(self, folder: str, modseq: int) -> list[int]:
        return await self._call("expunged_since", folder, modseq)

    async def search(self, folder: str, key: SearchKey) -> list[int]:
        return await self._call("search", folder, key)

    async def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]:
        return await self._call("sort", folder, key, criteria)

    async def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]:
        return await self._call("thread_messages", folder, key)

    async def claim_recent(self, folder: str) -> set[int]:
        return await self._call("claim_recent", folder)

    async def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        return await self._call("store_flags", folder, uids, mode, flags, unchanged_since=unchanged_since)

    async def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return await self._call("copy", source, uids, target, learn=learn)

    async def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return await self._call("move", source, uids, target, learn=learn)

    async def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        return await self._call("expunge", folder, uids)

    async def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        return await self._call("remove", folder, uids)

    async def learning_jobs(self, limit: int) -> list[LearnJob]:
        return await self._call("learning_jobs", limit)

    async def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int:
        return await self._call("finish_learning", done, failed, max_attempts)

    async def header(self, body_id: int) -> bytes:
        return await self._call("header", body_id)

    async def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return await self._call("headers", body_ids)

    async def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self._call("envelopes", body_ids)

    async def structures(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self._call("structures", body_ids)

    async def structure(self, body_id: int) -> str:
        return await self._call("structure", body_id)

    async def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]:
        return await self._call("envelope_values", body_ids)

    async def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]:
        return await self._call("bodystructure_values", body_ids, extensible=extensible)

    async def section(self, body_id: int, section: str) -> bytes | None:
        return await self._call("section", body_id, section)

    async def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]:
        return await self._call("sections", body_ids, section)

    async def binary_section(self, body_id: int, part: str) -> bytes | None:
        return await self._call("binary_section", body_id, part)

    async def binary_size(self, body_id: int, part: str) -> int | None:
        return await self._call("binary_size", body_id, part)

    async def raw(self, body_id: int) -> bytes:
        return await self._call("raw", body_id)

    async def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return await self._call("raws", body_ids)

    async def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self._call("email_ids", body_ids)

    async def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]:
        return await self._call("previews", body_ids, lazy)

    async def dav_collections(self) -> list[DavCollection]:
        return await self._call("dav_collections")

    async def dav_collection(self, name: str) -> DavCollection:
        return await self._call("dav_collection", name)

    async def dav_find_collection(self, name: str) -> DavCollection | None:
        return await self._call("dav_find_collection", name)

    async def dav_create_collection(
        self,
        name: str,
        kind: str,
        props: Mapping[str, str] | None = None,
        items: Iterable[NewItem] | None = None,
        *,
        replace: bool = False,
        limits: DavLimits | None = None,
    ) -> DavCollection:
        return await self._call("dav_create_collection", name, kind, props, items, replace=replace, limits=limits)

    async def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection:
        return await self._call("dav_set_props", name, props)

    async def dav_delete_collection(self, name: str) -> None:
        return await self._call("dav_delete_collection", name)

    async def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool:
        return await self._call("dav_ensure_defaults", defaults)

    async def dav_items(self, name: str) -> list[DavItem]:
        return await self._call("dav_items", name)

    async def dav_item_heads(self, name: str) -> list[DavItem]:
        return await self._call("dav_item_heads", name)

    async def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]:
        return await self._call("dav_get_items", name, hrefs)

    async def dav_get_item(self, name: str, href: str) -> DavItem | None:
        return await self._call("dav_get_item", name, href)

    async def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]:
        return await self._call("dav_items_in_range", name, component, start, end)

    async def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]:
        return await self._call("dav_card_hrefs", name, prop, needle)

    async def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]:
        return await self._call("dav_card_hrefs_with", name, prop)

    async def dav_has_uid(self, name: str, uid: str) -> bool:
        return await self._call("dav_has_uid", name, uid)

    async def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]:
        return await self._call("dav_changes", name, since)

    async def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]:
        return await self._call(
            "dav_put_item", name, item, if_match=if_match, if_none_match=if_none_match, limits=limits
        )

    async def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem:
        return await self._call("dav_delete_item", name, href, if_match=if_match)

    async def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem:
        return await self._call("dav_move_item", source, href, target, target_href, limits=limits)


class RemoteMailboxOps:
    """The blocking ``MailboxOps`` of a remote handle, for functions passed to ``RemoteMailbox.run``."""

    def __init__(self, handle: RemoteMailbox) -> None:
        self._handle = handle

    @property
    def mailbox_id(self) -> str:
        return self._handle.mailbox_id

    @property
    def quota(self) -> int | None:
        return self._handle.quota

    def dav_transaction(self) -> AbstractContextManager[object]:
        return self._handle.transaction()

    def list_folders(self) -> list[Folder]:
        return self._handle.blocking("list_folders")

    def folder(self, name: str) -> Folder:
        return self._handle.blocking("folder", name)

    def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        return self._handle.blocking("create_folder", name, special_use)

    def delete_folder(self, name: str) -> None:
        return self._handle.blocking("delete_folder", name)

    def rename_folder(self, old: str, new: str) -> None:
        return self._handle.blocking("rename_folder", old, new)

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        return self._handle.blocking("set_subscribed", name, subscribed)

    def subscriptions(self) -> list[str]:
        return self._handle.blocking("subscriptions")

    def status(self, name: str) -> FolderStatus:
        return self._handle.blocking("status", name)

    def usage(self) -> int:
        return self._handle.blocking("usage")

    def keywords(self) -> list[str]:
        return self._handle.blocking("keywords")

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult:
        return self._handle.blocking("append", folder, raw, flags, internal_date, enforce_quota=enforce_quota)

    def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        return self._handle.blocking("append_many", folder, items, enforce_quota=enforce_quota)

    def uids(self, folder: str) -> list[int]:
        return self._handle.blocking("uids", folder)

    def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        return self._handle.blocking("messages", folder, uids, changed_since=changed_since)

    def maildrop(self, folder: str = INBOX) -> Maildrop:
        return self._handle.blocking("maildrop", folder)

    def expunged_since(self, folder: str, modseq: int) -> list[int]:
        return self._handle.blocking("expunged_since", folder, modseq)

    def search(self, folder: str, key: SearchKey) -> list[int]:
        return self._handle.blocking("search", folder, key)

    def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]:
        return self._handle.blocking("sort", folder, key, criteria)

    def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]:
        return self._handle.blocking("thread_messages", folder, key)

    def claim_recent(self, folder: str) -> set[int]:
        return self._handle.blocking("claim_recent", folder)

    def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        return self._handle.blocking("store_flags", folder, uids, mode, flags, unchanged_since=unchanged_since)

    def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return self._handle.blocking("copy", source, uids, target, learn=learn)

    def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return self._handle.blocking("move", source, uids, target, learn=learn)

    def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        return self._handle.blocking("expunge", folder, uids)

    def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        return self._handle.blocking("remove", folder, uids)

    def learning_jobs(self, limit: int) -> list[LearnJob]:
        return self._handle.blocking("learning_jobs", limit)

    def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int:
        return self._handle.blocking("finish_learning", done, failed, max_attempts)

    def header(self, body_id: int) -> bytes:
        return self._handle.blocking("header", body_id)

    def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return self._handle.blocking("headers", body_ids)

    def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self._handle.blocking("envelopes", body_ids)

    def structures(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self._handle.blocking("structures", body_ids)

    def structure(self, body_id: int) -> str:
        return self._handle.blocking("structure", body_id)

    def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]:
        return self._handle.blocking("envelope_values", body_ids)

    def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]:
        return self._handle.blocking("bodystructure_values", body_ids, extensible=extensible)

    def section(self, body_id: int, section: str) -> bytes | None:
        return self._handle.blocking("section", body_id, section)

    def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]:
        return self._handle.blocking("sections", body_ids, section)

    def binary_section(self, body_id: int, part: str) -> bytes | None:
        return self._handle.blocking("binary_section", body_id, part)

    def binary_size(self, body_id: int, part: str) -> int | None:
        return self._handle.blocking("binary_size", body_id, part)

    def raw(self, body_id: int) -> bytes:
        return self._handle.blocking("raw", body_id)

    def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return self._handle.blocking("raws", body_ids)

    def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self._handle.blocking("email_ids", body_ids)

    def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]:
        return self._handle.blocking("previews", body_ids, lazy)

    def dav_collections(self) -> list[DavCollection]:
        return self._handle.blocking("dav_collections")

    def dav_collection(self, name: str) -> DavCollection:
        return self._handle.blocking("dav_collection", name)

    def dav_find_collection(self, name: str) -> DavCollection | None:
        return self._handle.blocking("dav_find_collection", name)

    def dav_create_collection(
        self,
        name: str,
        kind: str,
        props: Mapping[str, str] | None = None,
        items: Iterable[NewItem] | None = None,
        *,
        replace: bool = False,
        limits: DavLimits | None = None,
    ) -> DavCollection:
        return self._handle.blocking("dav_create_collection", name, kind, props, items, replace=replace, limits=limits)

    def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection:
        return self._handle.blocking("dav_set_props", name, props)

    def dav_delete_collection(self, name: str) -> None:
        return self._handle.blocking("dav_delete_collection", name)

    def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool:
        return self._handle.blocking("dav_ensure_defaults", defaults)

    def dav_items(self, name: str) -> list[DavItem]:
        return self._handle.blocking("dav_items", name)

    def dav_item_heads(self, name: str) -> list[DavItem]:
        return self._handle.blocking("dav_item_heads", name)

    def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]:
        return self._handle.blocking("dav_get_items", name, hrefs)

    def dav_get_item(self, name: str, href: str) -> DavItem | None:
        return self._handle.blocking("dav_get_item", name, href)

    def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]:
        return self._handle.blocking("dav_items_in_range", name, component, start, end)

    def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]:
        return self._handle.blocking("dav_card_hrefs", name, prop, needle)

    def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]:
        return self._handle.blocking("dav_card_hrefs_with", name, prop)

    def dav_has_uid(self, name: str, uid: str) -> bool:
        return self._handle.blocking("dav_has_uid", name, uid)

    def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]:
        return self._handle.blocking("dav_changes", name, since)

    def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]:
        return self._handle.blocking(
            "dav_put_item", name, item, if_match=if_match, if_none_match=if_none_match, limits=limits
        )

    def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem:
        return self._handle.blocking("dav_delete_item", name, href, if_match=if_match)

    def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem:
        return self._handle.blocking("dav_move_item", source, href, target, target_href, limits=limits)
