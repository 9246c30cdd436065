"""The split-mode MX's outbox: sealed mail held on the front-end while the data host's store is away.

In multi-server mode (``store_url`` set) the MX seals each stored message to the alias's public key
itself (``store.spool.seal_message``, as it always has), gives it a fresh entry id, and hands the
sealed record to the data host (``deliver_sealed``). When the store cannot be reached (refused, lost,
or silent past ``store_timeout``) the same sealed record goes into ``<data>/outbox/`` instead:

* one file per entry, ``<entry id>.sealed``: a short header (the mailbox id: a random name, no
  address) and the sealed record. Nothing on the front-end can open it; no plaintext waits anywhere;
* written to a temporary name, fsynced, renamed, and the directory fsynced, all before the SMTP
  ``250`` (a crash after the reply cannot lose the entry, one before it leaves no entry, or a
  temporary file the hand-over deletes later);
* ``HandOver`` pushes entries to the store when it answers again, oldest first, and removes each
  file only after the store confirmed it. The store commits the entry id with the record in the same
  transaction and appends nothing for an id it has seen (``Spool.append_once``), so an entry handed
  over twice — the reply was lost, or the hand-over died between the store's append and the file's
  removal — is in the mailbox once. The drain's own exactly-once (the last sequence number drained)
  does the rest.

Several MX processes share one outbox: each runs a ``HandOver``, and the one holding the directory's
hand-over lock (``flock``) works; the others skip the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.store.contract import MailStoreAPI

log = logging.getLogger("sealmail.mx.outbox")
MAGIC = b"sealmail-outbox 1\n"
_ENTRY = re.compile(r"[0-9]{20}-[0-9a-f]{16}")
HANDOVER_INTERVAL = 2.0  # seconds between hand-over rounds while entries wait
STALE_TEMPORARY = 600.0  # a temporary file this old is a write that crashed before its 250


def new_entry_id() -> str:
    """A unique id that sorts by creation time (the hand-over keeps arrival order)."""
    return f"{time.time_ns():020d}-{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Held:
    entry_id: str
    mailbox_id: str
    sealed: bytes


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def put(self, entry_id: str, mailbox_id: str, sealed: bytes) -> None:
        """Keep a sealed record durably (file and directory fsynced) before it returns."""
        if not _ENTRY.fullmatch(entry_id) or "\n" in mailbox_id:
            raise ValueError("bad outbox entry")
        temporary = self.directory / f".{entry_id}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(MAGIC + mailbox_id.encode("ascii") + b"\n" + sealed)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.rename(temporary, self._path(entry_id))
        self._sync_directory()

    def entries(self) -> list[str]:
        """The ids of the entries waiting, oldest first."""
        return sorted(p.name[: -len(".sealed")] for p in self.directory.glob("*.sealed") if _ENTRY.fullmatch(p.stem))

    def read(self, entry_id: str) -> Held:
        data = self._path(entry_id).read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"outbox entry {entry_id} has no header")
        mailbox_id, _, sealed = data[len(MAGIC) :].partition(b"\n")
        return Held(entry_id, mailbox_id.decode("ascii"), sealed)

    def remove(self, entry_id: str) -> None:
        self._path(entry_id).unlink(missing_ok=True)
        self._sync_directory()

    def drop_stale_temporaries(self, older_than: float = STALE_TEMPORARY) -> None:
        limit = time.time() - older_than
        for path in self.directory.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < limit:
                    path.unlink()

    @contextlib.contextmanager
    def handing_over(self) -> Iterator[bool]:
        """The directory's hand-over lock, if free (True): one process hands over at a time."""
        fd = os.open(self.directory / ".handover.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _path(self, entry_id: str) -> Path:
        return self.directory / f"{entry_id}.sealed"

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class HandOver:
    """Pushes the outbox's entries to the store whenever it answers (one task per MX process)."""

    def __init__(self, outbox: Outbox, mailstore: MailStoreAPI, interval: float = HANDOVER_INTERVAL) -> None:
        self.outbox = outbox
        self.mailstore = mailstore
        self.interval = interval

    def run_once(self) -> int:
        """One round (blocking: on a worker thread); returns how many entries were handed over."""
        handed = 0
        with self.outbox.handing_over() as mine:
            if not mine:
                return 0
            self.outbox.drop_stale_temporaries()
            for entry_id in self.outbox.entries():
                try:
                    held = self.outbox.read(entry_id)
                except FileNotFoundError:
                    continue
                except (OSError, ValueError):
                    log.exception("an outbox entry cannot be read; it stays for the operator")
                    continue
                try:
                    self.mailstore.deliver_sealed(held.mailbox_id, held.entry_id, held.sealed)
                except StoreUnavailable:
                    continue  # its data host is still away: the next round tries again (other hosts may answer)
                except Exception:
                    log.exception("the store refused an outbox entry; it stays for the operator")
                    continue
                self.outbox.remove(entry_id)
                handed += 1
        if handed:
            log.info("handed %d held message(s) over to the store", handed)
        return handed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.outbox.entries():
                    await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("the outbox hand-over failed; it tries again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
