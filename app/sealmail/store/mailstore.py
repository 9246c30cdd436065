"""Per-process access to the mailboxes under the data directory.

Files: ``<data>/mailboxes/<mailbox id>.sqlite`` (SQLCipher, with ``-wal``/``-shm``), a ``.lock`` file
beside it, and ``<data>/spool/<mailbox id>.sqlite`` (sealed records). Mailbox ids are random: no
file name reveals an address.

``open()`` hands out one shared handle per mailbox (sessions of the same alias share it; it closes
with its last user) wrapped for asyncio: each call runs on that mailbox's own worker thread, and
change events are published on the bus after the transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sealmail.crypto.keys import MailboxSecrets
from sealmail.crypto.sealed import Buffer
from sealmail.net.coalesce import Coalescer
from sealmail.store import events as ev
from sealmail.store.dav import DavCollection, DavItem, DavLimits, NewItem
from sealmail.store.exclusive import MaildropLock
from sealmail.store.mailbox import Mailbox
from sealmail.store.maintenance import SnapshotInfo
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
from sealmail.store.spool import RecordHandoff, Spool, seal_message

if TYPE_CHECKING:
    from sealmail.store.contract import MailboxHandle

log = logging.getLogger("sealmail.store")
T = TypeVar("T")
P = ParamSpec("P")

# Upkeep (``Mailbox.upkeep``: queued search texts into the index, WAL checkpoints) runs once a
# mailbox has had no request for UPKEEP_QUIET seconds, or after UPKEEP_EVERY commits without such
# a pause, so a steady stream of appends still keeps the queue and the WAL short.
UPKEEP_QUIET = 0.25
UPKEEP_EVERY = 200


class AsyncMailbox:
    """A shared ``Mailbox`` whose blocking work runs on its own thread, never on the event loop."""

    def __init__(self, store: MailStore, mailbox: Mailbox, secrets: MailboxSecrets) -> None:
        self._store = store
        self.mailbox = mailbox
        self.mailbox_id = mailbox.mailbox_id
        self._secrets = secrets
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mbox-{self.mailbox_id[:6]}")
        self.users = 0
        self._watcher: asyncio.Task[None] | None = None
        mailbox.file.defer_checkpoints()  # ``_upkeep`` checkpoints between requests
        self._upkeep_task: asyncio.Task[None] | None = None
        self._last_use = 0.0
        self._upkept = -1  # commits at the last upkeep; -1: one soon (a restart may have left texts to index)
        self._closing = False

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the mailbox's own thread (one at a time, in call order)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        finally:
            self._last_use = loop.time()
            if self._upkeep_task is None and not self._closing and self.mailbox.file.commits != self._upkept:
                self._upkeep_task = asyncio.create_task(self._upkeep(), name=f"upkeep-{self.mailbox_id[:6]}")

    async def _upkeep(self) -> None:
        """Upkeep steps on the mailbox's thread, between requests, until nothing is left to do."""
        loop = asyncio.get_running_loop()
        delay = UPKEEP_QUIET
        try:
            while True:
                await asyncio.sleep(delay)
                delay = UPKEEP_QUIET
                quiet = loop.time() - self._last_use >= UPKEEP_QUIET
                if not quiet and self.mailbox.file.commits - self._upkept < UPKEEP_EVERY:
                    continue
                try:
                    more, self._upkept = await loop.run_in_executor(self._executor, self.mailbox.upkeep)
                except Exception:
                    log.exception("mailbox upkeep failed; a search indexes what waits, the next write retries")
                    self._upkept = self.mailbox.file.commits
                    return
                if not more and self.mailbox.file.commits == self._upkept:
                    return
                if more and loop.time() - self._last_use >= UPKEEP_QUIET:
                    delay = 0  # still no request: the next batch at once
        finally:
            self._upkeep_task = None

    # The mailbox's API, each method one ``run`` of the ``Mailbox`` method of the same name and
    # arguments (``drain`` below takes the spool and key itself; a DAV transaction spans several
    # calls, so ``dav_transaction`` is used on the thread, inside ``run``).
    # ---- folders -----------------------------------------------------------------------------------
    async def list_folders(self) -> list[Folder]:
        return await self.run(self.mailbox.list_folders)

    async def folder(self, name: str) -> Folder:
        return await self.run(self.mailbox.folder, name)

    async def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        return await self.run(self.mailbox.create_folder, name, special_use)

    async def delete_folder(self, name: str) -> None:
        return await self.run(self.mailbox.delete_folder, name)

    async def rename_folder(self, old: str, new: str) -> None:
        return await self.run(self.mailbox.rename_folder, old, new)

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        return await self.run(self.mailbox.set_subscribed, name, subscribed)

    async def subscriptions(self) -> list[str]:
        return await self.run(self.mailbox.subscriptions)

    async def status(self, name: str) -> FolderStatus:
        return await self.run(self.mailbox.status, name)

    async def usage(self) -> int:
        return await self.run(self.mailbox.usage)

    async def keywords(self) -> list[str]:
        return await self.run(self.mailbox.keywords)

    # ---- messages ----------------------------------------------------------------------------------
    async def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult:
        return await self.run(self.mailbox.append, folder, raw, flags, internal_date, enforce_quota=enforce_quota)

    async def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        return await self.run(self.mailbox.append_many, folder, items, enforce_quota=enforce_quota)

    async def uids(self, folder: str) -> list[int]:
        return await self.run(self.mailbox.uids, folder)

    async def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        return await self.run(self.mailbox.messages, folder, uids, changed_since=changed_since)

    async def maildrop(self, folder: str = INBOX) -> Maildrop:
        return await self.run(self.mailbox.maildrop, folder)

    async def expunged_since(self, folder: str, modseq: int) -> list[int]:
        return await self.run(self.mailbox.expunged_since, folder, modseq)

    async def search(self, folder: str, key: SearchKey) -> list[int]:
        return await self.run(self.mailbox.search, folder, key)

    async def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]:
        return await self.run(self.mailbox.sort, folder, key, criteria)

    async def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]:
        return await self.run(self.mailbox.thread_messages, folder, key)

    async def claim_recent(self, folder: str) -> set[int]:
        return await self.run(self.mailbox.claim_recent, folder)

    async def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        return await self.run(self.mailbox.store_flags, folder, uids, mode, flags, unchanged_since=unchanged_since)

    async def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return await self.run(self.mailbox.copy, source, uids, target, learn=learn)

    async def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return await self.run(self.mailbox.move, source, uids, target, learn=learn)

    async def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        return await self.run(self.mailbox.expunge, folder, uids)

    async def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        return await self.run(self.mailbox.remove, folder, uids)

    async def learning_jobs(self, limit: int) -> list[LearnJob]:
        return await self.run(self.mailbox.learning_jobs, limit)

    async def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int:
        return await self.run(self.mailbox.finish_learning, done, failed, max_attempts)

    # ---- sections ----------------------------------------------------------------------------------
    async def header(self, body_id: int) -> bytes:
        return await self.run(self.mailbox.header, body_id)

    async def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return await self.run(self.mailbox.headers, body_ids)

    async def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self.run(self.mailbox.envelopes, body_ids)

    async def structures(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self.run(self.mailbox.structures, body_ids)

    async def structure(self, body_id: int) -> str:
        return await self.run(self.mailbox.structure, body_id)

    async def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]:
        return await self.run(self.mailbox.envelope_values, body_ids)

    async def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]:
        return await self.run(self.mailbox.bodystructure_values, body_ids, extensible=extensible)

    async def section(self, body_id: int, section: str) -> bytes | None:
        return await self.run(self.mailbox.section, body_id, section)

    async def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]:
        return await self.run(self.mailbox.sections, body_ids, section)

    async def binary_section(self, body_id: int, part: str) -> bytes | None:
        return await self.run(self.mailbox.binary_section, body_id, part)

    async def binary_size(self, body_id: int, part: str) -> int | None:
        return await self.run(self.mailbox.binary_size, body_id, part)

    async def raw(self, body_id: int) -> bytes:
        return await self.run(self.mailbox.raw, body_id)

    async def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return await self.run(self.mailbox.raws, body_ids)

    async def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]:
        return await self.run(self.mailbox.email_ids, body_ids)

    async def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]:
        return await self.run(self.mailbox.previews, body_ids, lazy)

    # ---- dav ---------------------------------------------------------------------------------------
    async def dav_collections(self) -> list[DavCollection]:
        return await self.run(self.mailbox.dav_collections)

    async def dav_collection(self, name: str) -> DavCollection:
        return await self.run(self.mailbox.dav_collection, name)

    async def dav_find_collection(self, name: str) -> DavCollection | None:
        return await self.run(self.mailbox.dav_find_collection, name)

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
        return await self.run(
            self.mailbox.dav_create_collection, name, kind, props, items, replace=replace, limits=limits
        )

    async def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection:
        return await self.run(self.mailbox.dav_set_props, name, props)

    async def dav_delete_collection(self, name: str) -> None:
        return await self.run(self.mailbox.dav_delete_collection, name)

    async def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool:
        return await self.run(self.mailbox.dav_ensure_defaults, defaults)

    async def dav_items(self, name: str) -> list[DavItem]:
        return await self.run(self.mailbox.dav_items, name)

    async def dav_item_heads(self, name: str) -> list[DavItem]:
        return await self.run(self.mailbox.dav_item_heads, name)

    async def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]:
        return await self.run(self.mailbox.dav_get_items, name, hrefs)

    async def dav_get_item(self, name: str, href: str) -> DavItem | None:
        return await self.run(self.mailbox.dav_get_item, name, href)

    async def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]:
        return await self.run(self.mailbox.dav_items_in_range, name, component, start, end)

    async def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]:
        return await self.run(self.mailbox.dav_card_hrefs, name, prop, needle)

    async def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]:
        return await self.run(self.mailbox.dav_card_hrefs_with, name, prop)

    async def dav_has_uid(self, name: str, uid: str) -> bool:
        return await self.run(self.mailbox.dav_has_uid, name, uid)

    async def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]:
        return await self.run(self.mailbox.dav_changes, name, since)

    async def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]:
        return await self.run(
            self.mailbox.dav_put_item, name, item, if_match=if_match, if_none_match=if_none_match, limits=limits
        )

    async def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem:
        return await self.run(self.mailbox.dav_delete_item, name, href, if_match=if_match)

    async def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem:
        return await self.run(self.mailbox.dav_move_item, source, href, target, target_href, limits=limits)

    # ---- maintenance -------------------------------------------------------------------------------
    async def integrity_check(self) -> str:
        return await self.run(self.mailbox.integrity_check)

    async def snapshot(self, dest: Path) -> SnapshotInfo:
        return await self.run(self.mailbox.snapshot, dest)

    async def drain(self) -> DrainResult:
        spool = self._store.spool(self.mailbox_id)
        result = await self.run(self.mailbox.drain, spool, self._secrets.private_key)
        if result.failed:
            log.error("%d sealed spool record(s) did not open; they stay in the spool", len(result.failed))
        return result

    async def _watch_spool(self, subscription: ev.Subscription) -> None:
        """New sealed mail for an open mailbox is drained at once (the MX publishes SpoolAppended);
        after a gap in the bus (``Resync``: such events may be lost) the spool is drained as well."""
        try:
            async for event in subscription:
                if isinstance(event, ev.SpoolAppended | ev.Resync):
                    try:
                        await self.drain()
                    except Exception:
                        log.exception("draining the spool failed; the next event or login retries")
        finally:
            await subscription.close()

    async def release(self) -> None:
        await self._store._release(self)

    async def _stop_watching(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._upkeep_task is not None:  # what it left is done by the next opener or search
            self._upkeep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep_task

    def _shutdown(self) -> None:
        self._executor.submit(self.mailbox.close).result()
        self._executor.shutdown(wait=True)


class MailStore:
    def __init__(self, data_dir: Path, bus: ev.ChangeBus | None = None) -> None:
        self.data_dir = data_dir
        self.bus = bus
        self._announcements: Coalescer[str] = Coalescer(self._announce)
        self._open: dict[str, AsyncMailbox] = {}
        self._spools: dict[str, Spool] = {}
        self._spools_lock = threading.Lock()  # spool() is called from worker threads
        self._opening: dict[str, asyncio.Lock] = {}
        self._events: asyncio.Queue[ev.ChangeEvent] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Another process that writes this host's spools (the MX's spool writer, see
        # ``sealmail.smtp.spoolwriter``): ``deliver`` hands it sealed records up to ``limit`` octets.
        self.spool_handoff: RecordHandoff | None = None

    # ---- paths ----------------------------------------------------------------------------------
    def mailbox_path(self, mailbox_id: str) -> Path:
        return self.data_dir / "mailboxes" / f"{mailbox_id}.sqlite"

    def spool_path(self, mailbox_id: str) -> Path:
        return self.data_dir / "spool" / f"{mailbox_id}.sqlite"

    def spool(self, mailbox_id: str) -> Spool:
        """This process's one handle on a mailbox's spool (one connection: appends commit together)."""
        with self._spools_lock:
            spool = self._spools.get(mailbox_id)
            if spool is None:
                spool = self._spools[mailbox_id] = Spool(self.spool_path(mailbox_id))
            return spool

    # ---- synchronous use (CLI, jobs, tests) ------------------------------------------------------
    def create(self, mailbox_id: str, key: bytes) -> None:
        """Create a new, empty mailbox file with the default folders."""
        path = self.mailbox_path(mailbox_id)
        if path.exists():
            raise FileExistsError(f"mailbox {mailbox_id} exists already")
        Mailbox(mailbox_id, path, key).close()

    def open_sync(self, mailbox_id: str, key: bytes, *, quota: int | None = None) -> Mailbox:
        """A private handle (the caller closes it); its events are not published."""
        return Mailbox(mailbox_id, self.mailbox_path(mailbox_id), key, quota=quota)

    def delete(self, mailbox_id: str) -> None:
        """Remove a mailbox and its spool (the alias is gone, or its keys were reset)."""
        path = self.mailbox_path(mailbox_id)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
        path.with_name(f"{mailbox_id}.pop3.lock").unlink(missing_ok=True)
        with self._spools_lock:
            spool = self._spools.pop(mailbox_id, None)
        if spool is not None:
            spool.close()
        spool_path = self.spool_path(mailbox_id)
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(str(spool_path) + suffix).unlink(missing_ok=True)

    def spool_size(self, mailbox_id: str) -> int:
        """Sealed records waiting in the mailbox's spool (the MX's quota check counts them)."""
        return self.spool(mailbox_id).size()

    def deliver(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        """Seal ``raw`` to the mailbox's public key and append it durably to its spool (the MX path).

        ``raw`` may be the message in pieces (trace headers, then the received bytes): they are
        sealed in segments as the spool record is written, never joined into one copy.

        The caller publishes ``SpoolAppended`` afterwards (``deliver_async`` does) so an open session drains it.
        """
        sealed = seal_message(public_key, mailbox_id, raw, received_at or datetime.now(UTC), folder)
        handoff = self.spool_handoff
        if handoff is not None and len(sealed) <= handoff.limit:
            return handoff.append(mailbox_id, b"".join(sealed))  # returns once the writer committed it
        return self.spool(mailbox_id).append(sealed)

    def deliver_sealed(self, mailbox_id: str, entry_id: str, sealed: bytes) -> int:
        """Append a record another host sealed (``spool.seal_message``) unless ``entry_id`` came before.

        The split-mode MX's path (``smtp.outbox``): it seals, then hands the record over once,
        directly or later from its outbox; a repeat of ``entry_id`` appends nothing."""
        return self.spool(mailbox_id).append_once(sealed, entry_id)

    async def deliver_async(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        """``deliver`` off the event loop, then tell any session holding the key to drain."""
        seq = await asyncio.get_running_loop().run_in_executor(
            None, self.deliver, mailbox_id, public_key, raw, received_at, folder
        )
        await self.spool_appended(mailbox_id)
        return seq

    async def spool_appended(self, mailbox_id: str) -> None:
        """Tell any session holding the mailbox's key that sealed mail waits (after ``deliver``).

        A failure is logged, not raised: the mail is stored, and a bus that was away resyncs its
        subscribers (``ev.Resync``), whose spool watchers then drain it."""
        if self.bus is not None:
            try:
                await self._announcements.submit([mailbox_id])
            except Exception:
                log.warning("could not announce new mail in a spool; sessions find it when the bus is back")

    async def _announce(self, mailbox_ids: list[str]) -> None:
        """The announcements of concurrent deliveries, one per spool, in one round trip."""
        assert self.bus is not None
        await self.bus.publish_many([ev.SpoolAppended(m) for m in dict.fromkeys(mailbox_ids)])

    async def lock_maildrop(self, handle: MailboxHandle) -> MaildropLock | None:
        """The POP3 lock on the handle's mailbox: an ``flock`` beside its file (``store.exclusive``)."""
        return await asyncio.to_thread(MaildropLock.acquire, self.data_dir, handle.mailbox_id)

    # ---- asynchronous, shared handles -----------------------------------------------------------
    async def open(self, mailbox_id: str, secrets: MailboxSecrets, *, quota: int | None = None) -> AsyncMailbox:
        """The shared handle for a mailbox, opened with the session's unwrapped key."""
        self._start_publisher()
        lock = self._opening.setdefault(mailbox_id, asyncio.Lock())
        async with lock:
            handle = self._open.get(mailbox_id)
            if handle is None:
                loop = asyncio.get_running_loop()
                mailbox = await loop.run_in_executor(
                    None,
                    lambda: Mailbox(
                        mailbox_id, self.mailbox_path(mailbox_id), secrets.mailbox_key, quota=quota, notify=self._notify
                    ),
                )
                handle = AsyncMailbox(self, mailbox, secrets)
                self._open[mailbox_id] = handle
                if self.bus is not None:
                    subscription = await self.bus.subscribe(mailbox_id)
                    handle._watcher = asyncio.create_task(handle._watch_spool(subscription))
                await handle.drain()  # whoever unlocks a mailbox drains its spool
            elif quota is not None:
                handle.mailbox.quota = quota
            handle.users += 1
            return handle

    async def _release(self, handle: AsyncMailbox) -> None:
        handle.users -= 1
        if handle.users > 0:
            return
        if self._open.get(handle.mailbox_id) is handle:
            del self._open[handle.mailbox_id]
        await handle._stop_watching()
        await asyncio.get_running_loop().run_in_executor(None, handle._shutdown)

    def _start_publisher(self) -> None:
        if self._publisher is None and self.bus is not None:
            self._loop = asyncio.get_running_loop()
            self._events = asyncio.Queue()
            self._publisher = asyncio.create_task(self._publish_loop(), name="sealmail-store-events")

    def _notify(self, events: list[ev.ChangeEvent]) -> None:
        """Called on a mailbox thread after COMMIT: hand the events to the loop, in order."""
        if self._loop is None or self._events is None:
            return
        for event in events:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    async def _publish_loop(self) -> None:
        assert self._events is not None
        assert self.bus is not None
        while True:
            event = await self._events.get()
            try:
                await self.bus.publish(event)
            except Exception:
                log.warning("could not publish a change event", exc_info=True)

    async def close(self) -> None:
        for handle in list(self._open.values()):
            handle.users = 1
            await self._release(handle)
        if self._publisher is not None:
            # Let queued events go out before stopping.
            while self._events is not None and not self._events.empty():
                await asyncio.sleep(0.01)
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        self.close_spools()

    def close_spools(self) -> None:
        with self._spools_lock:
            for spool in self._spools.values():
                spool.close()
            self._spools.clear()
