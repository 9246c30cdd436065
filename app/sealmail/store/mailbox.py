"""One encrypted mailbox: the file, opened once, and its parts.

``Mailbox`` opens the SQLCipher file (``MailboxDB``: connection, locks, write transactions and their
events) and hands that one object to each part, kept in ``mailbox.parts``:

- ``folders`` (``store.folders``): create/rename/delete/list, STATUS, subscriptions, special use;
- ``messages`` (``store.messages``): append and spool drain, listings and changes, flags,
  copy/move, expunge, search, the POP3 maildrop;
- ``ordering`` (``store.ordering``): SORT and THREAD (RFC 5256);
- ``text`` (``store.textindex``): the search text of new messages, indexed in batches;
- ``sections`` (``store.sections``): message content for FETCH: headers, ENVELOPE,
  BODYSTRUCTURE, BODY[section], BINARY, the raw message;
- ``learning`` (``store.learnjobs``): messages filed into or out of Junk, waiting to be taught to
  the spam filter;
- ``dav`` (``store.dav``): calendars and address books;
- ``maintenance`` (``store.maintenance``): integrity check and snapshots.

The methods below are the mailbox's synchronous API, each one line handing over to its part.
Synchronous and thread-safe; ``store.mailstore.AsyncMailbox`` runs the same parts on a per-mailbox
worker thread so no SQLite work happens on an event loop. Protocol code never sees SQL: it calls
these methods with folder names and UIDs and gets typed results. Every mutation commits first and
then reports its change events to ``notify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlcipher3

from sealmail.store.dav import DavCollection, DavItem, DavLimits, DavStore, NewItem
from sealmail.store.folders import Folders
from sealmail.store.learnjobs import LearnJobs
from sealmail.store.mailboxdb import Events, MailboxDB, Notify
from sealmail.store.maintenance import Maintenance, SnapshotInfo
from sealmail.store.messages import Messages
from sealmail.store.model import (
    DEFAULT_FOLDERS,
    DELIMITER,
    INBOX,
    MAX_FOLDER_NAME,
    MAX_KEYWORDS,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AppendResult,
    CopyResult,
    DrainResult,
    Folder,
    FolderStatus,
    LearnJob,
    Maildrop,
    MaildropEntry,
    MessageInfo,
    StoreMode,
    StoreResult,
    normalize_folder_name,
)
from sealmail.store.ordering import Ordering, SortCriterion, ThreadMessage
from sealmail.store.rows import MessageRows
from sealmail.store.search import SearchKey
from sealmail.store.sections import ImapValue, Sections
from sealmail.store.spool import Spool
from sealmail.store.textindex import BATCH, TextIndex

# The names protocol code and tests import from here (their home is ``store.model``).
__all__ = [
    "DEFAULT_FOLDERS",
    "DELIMITER",
    "INBOX",
    "MAX_FOLDER_NAME",
    "MAX_KEYWORDS",
    "SPECIAL_USES",
    "SYSTEM_FLAGS",
    "AppendResult",
    "CopyResult",
    "DrainResult",
    "Folder",
    "FolderStatus",
    "LearnJob",
    "Mailbox",
    "MailboxParts",
    "Maildrop",
    "MaildropEntry",
    "MessageInfo",
    "Notify",
    "SnapshotInfo",
    "StoreMode",
    "StoreResult",
    "normalize_folder_name",
]


@dataclass(frozen=True, slots=True)
class MailboxParts:
    """The parts of one open mailbox; all share its ``MailboxDB``."""

    folders: Folders
    messages: Messages
    ordering: Ordering
    text: TextIndex
    sections: Sections
    learning: LearnJobs
    dav: DavStore
    maintenance: Maintenance


class Mailbox:
    def __init__(
        self,
        mailbox_id: str,
        path: Path,
        key: bytes,
        *,
        quota: int | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.path = path
        self.file = MailboxDB(mailbox_id, path, key, quota=quota, notify=notify)
        sections = Sections(self.file)
        rows = MessageRows(self.file)
        text = TextIndex(self.file, sections.raw)
        learning = LearnJobs(self.file)
        folders = Folders(self.file, rows)
        self.parts = MailboxParts(
            folders=folders,
            messages=Messages(self.file, rows, sections, text, learning, folders),
            ordering=Ordering(self.file, rows, text),
            text=text,
            sections=sections,
            learning=learning,
            dav=DavStore(self.file),
            maintenance=Maintenance(self.file),
        )
        self.parts.folders.ensure_defaults()

    def close(self) -> None:
        self.parts.sections.forget_bodies()
        self.file.close()

    def upkeep(self, batch: int = BATCH) -> tuple[bool, int]:
        """Work kept off the write path, one bounded step between requests: index the search text of
        a batch of new messages, then checkpoint the WAL. Returns (more waits, commits so far)."""
        more = self.parts.text.index_pending(batch) == batch
        self.file.checkpoint()
        return more, self.file.commits

    @property
    def db(self) -> sqlcipher3.Connection:
        """The open connection (tests and tools look inside; the parts own every statement)."""
        return self.file.conn

    @property
    def quota(self) -> int | None:
        return self.file.quota

    @quota.setter
    def quota(self, octets: int | None) -> None:
        self.file.quota = octets

    @property
    def notify(self) -> Notify | None:
        return self.file.notify

    @notify.setter
    def notify(self, notify: Notify | None) -> None:
        self.file.notify = notify

    # ---- folders -----------------------------------------------------------------------------------
    def list_folders(self) -> list[Folder]:
        return self.parts.folders.list_folders()

    def folder(self, name: str) -> Folder:
        return self.parts.folders.folder(name)

    def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        return self.parts.folders.create_folder(name, special_use)

    def delete_folder(self, name: str) -> None:
        self.parts.folders.delete_folder(name)
        self.parts.sections.forget_freed()

    def rename_folder(self, old: str, new: str) -> None:
        return self.parts.folders.rename_folder(old, new)

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        return self.parts.folders.set_subscribed(name, subscribed)

    def subscriptions(self) -> list[str]:
        return self.parts.folders.subscriptions()

    def status(self, name: str) -> FolderStatus:
        return self.parts.folders.status(name)

    def usage(self) -> int:
        return self.parts.folders.usage()

    def keywords(self) -> list[str]:
        return self.parts.folders.keywords()

    # ---- messages ----------------------------------------------------------------------------------
    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult:
        return self.parts.messages.append(folder, raw, flags, internal_date, enforce_quota=enforce_quota)

    def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]:
        return self.parts.messages.append_many(folder, items, enforce_quota=enforce_quota)

    def drain(self, spool: Spool, private_key: bytes) -> DrainResult:
        return self.parts.messages.drain(spool, private_key)

    def uids(self, folder: str) -> list[int]:
        return self.parts.messages.uids(folder)

    def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]:
        return self.parts.messages.messages(folder, uids, changed_since=changed_since)

    def maildrop(self, folder: str = INBOX) -> Maildrop:
        return self.parts.messages.maildrop(folder)

    def expunged_since(self, folder: str, modseq: int) -> list[int]:
        return self.parts.messages.expunged_since(folder, modseq)

    def search(self, folder: str, key: SearchKey) -> list[int]:
        return self.parts.messages.search(folder, key)

    def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]:
        return self.parts.ordering.sort(folder, key, criteria)

    def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]:
        return self.parts.ordering.thread_messages(folder, key)

    def claim_recent(self, folder: str) -> set[int]:
        return self.parts.messages.claim_recent(folder)

    def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        return self.parts.messages.store_flags(folder, uids, mode, flags, unchanged_since=unchanged_since)

    def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        return self.parts.messages.copy(source, uids, target, learn=learn)

    # An expunge may free bodies: what was read of them leaves memory with them.
    def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult:
        result = self.parts.messages.move(source, uids, target, learn=learn)
        self.parts.sections.forget_freed()
        return result

    def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]:
        gone = self.parts.messages.expunge(folder, uids)
        self.parts.sections.forget_freed()
        return gone

    def remove(self, folder: str, uids: Iterable[int]) -> list[int]:
        gone = self.parts.messages.remove(folder, uids)
        self.parts.sections.forget_freed()
        return gone

    # ---- spam learning -----------------------------------------------------------------------------
    def learning_jobs(self, limit: int) -> list[LearnJob]:
        return self.parts.learning.pending(limit)

    def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int:
        return self.parts.learning.finish(done, failed, max_attempts)

    # ---- sections ----------------------------------------------------------------------------------
    def header(self, body_id: int) -> bytes:
        return self.parts.sections.header(body_id)

    def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return self.parts.sections.headers(body_ids)

    def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self.parts.sections.envelopes(body_ids)

    def structures(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self.parts.sections.structures(body_ids)

    def structure(self, body_id: int) -> str:
        return self.parts.sections.structure(body_id)

    def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]:
        return self.parts.sections.envelope_values(body_ids)

    def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]:
        return self.parts.sections.bodystructure_values(body_ids, extensible=extensible)

    def section(self, body_id: int, section: str) -> bytes | None:
        return self.parts.sections.section(body_id, section)

    def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]:
        return self.parts.sections.sections(body_ids, section)

    def binary_section(self, body_id: int, part: str) -> bytes | None:
        return self.parts.sections.binary_section(body_id, part)

    def binary_size(self, body_id: int, part: str) -> int | None:
        return self.parts.sections.binary_size(body_id, part)

    def raw(self, body_id: int) -> bytes:
        return self.parts.sections.raw(body_id)

    def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]:
        return self.parts.sections.raws(body_ids)

    def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]:
        return self.parts.sections.email_ids(body_ids)

    def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]:
        return self.parts.sections.previews(body_ids, lazy)

    # ---- dav ---------------------------------------------------------------------------------------
    def dav_transaction(self) -> AbstractContextManager[Events]:
        return self.parts.dav.dav_transaction()

    def dav_collections(self) -> list[DavCollection]:
        return self.parts.dav.dav_collections()

    def dav_collection(self, name: str) -> DavCollection:
        return self.parts.dav.dav_collection(name)

    def dav_find_collection(self, name: str) -> DavCollection | None:
        return self.parts.dav.dav_find_collection(name)

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
        return self.parts.dav.dav_create_collection(name, kind, props, items, replace=replace, limits=limits)

    def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection:
        return self.parts.dav.dav_set_props(name, props)

    def dav_delete_collection(self, name: str) -> None:
        return self.parts.dav.dav_delete_collection(name)

    def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool:
        return self.parts.dav.dav_ensure_defaults(defaults)

    def dav_items(self, name: str) -> list[DavItem]:
        return self.parts.dav.dav_items(name)

    def dav_item_heads(self, name: str) -> list[DavItem]:
        return self.parts.dav.dav_item_heads(name)

    def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]:
        return self.parts.dav.dav_get_items(name, hrefs)

    def dav_get_item(self, name: str, href: str) -> DavItem | None:
        return self.parts.dav.dav_get_item(name, href)

    def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]:
        return self.parts.dav.dav_items_in_range(name, component, start, end)

    def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]:
        return self.parts.dav.dav_card_hrefs(name, prop, needle)

    def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]:
        return self.parts.dav.dav_card_hrefs_with(name, prop)

    def dav_has_uid(self, name: str, uid: str) -> bool:
        return self.parts.dav.dav_has_uid(name, uid)

    def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]:
        return self.parts.dav.dav_changes(name, since)

    def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]:
        return self.parts.dav.dav_put_item(name, item, if_match=if_match, if_none_match=if_none_match, limits=limits)

    def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem:
        return self.parts.dav.dav_delete_item(name, href, if_match=if_match)

    def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem:
        return self.parts.dav.dav_move_item(source, href, target, target_href, limits=limits)

    # ---- maintenance -------------------------------------------------------------------------------
    def integrity_check(self) -> str:
        return self.parts.maintenance.integrity_check()

    def snapshot(self, dest: Path) -> SnapshotInfo:
        return self.parts.maintenance.snapshot(dest)
