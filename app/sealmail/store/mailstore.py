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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sealmail.crypto.keys import MailboxSecrets
from sealmail.crypto.sealed import Buffer
from sealmail.store import events as ev
from sealmail.store.mailbox import DrainResult, Mailbox
from sealmail.store.spool import Spool, seal_message

log = logging.getLogger("sealmail.store")
T = TypeVar("T")


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

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """``await handle.append(...)``: any Mailbox method, run on the mailbox's thread."""
        method = getattr(self.mailbox, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.run(method, *args, **kwargs)

        return call

    async def drain(self) -> DrainResult:
        spool = self._store.spool(self.mailbox_id)
        result = await self.run(self.mailbox.drain, spool, self._secrets.private_key)
        if result.failed:
            log.error("%d sealed spool record(s) did not open; they stay in the spool", len(result.failed))
        return result

    async def _watch_spool(self, subscription: ev.Subscription) -> None:
        """New sealed mail for an open mailbox is drained at once (the MX publishes SpoolAppended)."""
        try:
            async for event in subscription:
                if isinstance(event, ev.SpoolAppended):
                    try:
                        await self.drain()
                    except Exception:
                        log.exception("draining the spool failed; the next event or login retries")
        finally:
            await subscription.close()

    async def release(self) -> None:
        await self._store._release(self)

    async def _stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    def _shutdown(self) -> None:
        self._executor.submit(self.mailbox.close).result()
        self._executor.shutdown(wait=True)


class MailStore:
    def __init__(self, data_dir: Path, bus: ev.ChangeBus | None = None) -> None:
        self.data_dir = data_dir
        self.bus = bus
        self._open: dict[str, AsyncMailbox] = {}
        self._spools: dict[str, Spool] = {}
        self._spools_lock = threading.Lock()  # spool() is called from worker threads
        self._opening: dict[str, asyncio.Lock] = {}
        self._events: asyncio.Queue[ev.ChangeEvent] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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

    def deliver(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str = "INBOX",
    ) -> int:
        """Seal ``raw`` to the mailbox's public key and append it durably to its spool (the MX path).

        ``raw`` may be the message in pieces (trace headers, then the received bytes): they are
        sealed in segments as the spool record is written, never joined into one copy.

        The caller publishes ``SpoolAppended`` afterwards (``deliver_async`` does) so an open session drains it.
        """
        sealed = seal_message(public_key, mailbox_id, raw, received_at or datetime.now(UTC), folder)
        return self.spool(mailbox_id).append(sealed)

    async def deliver_async(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str = "INBOX",
    ) -> int:
        """``deliver`` off the event loop, then tell any session holding the key to drain."""
        seq = await asyncio.get_running_loop().run_in_executor(
            None, self.deliver, mailbox_id, public_key, raw, received_at, folder
        )
        await self.spool_appended(mailbox_id)
        return seq

    async def spool_appended(self, mailbox_id: str) -> None:
        """Tell any session holding the mailbox's key that sealed mail waits (after ``deliver``)."""
        if self.bus is not None:
            await self.bus.publish(ev.SpoolAppended(mailbox_id))

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
        for spool in self._spools.values():
            spool.close()
        self._spools.clear()
