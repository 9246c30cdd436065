"""The typed contract every mailbox handle and every mail store meets, local or remote.

``store.mailstore`` (the files on this host) and ``store.remote`` (a data host's store over the
``store.rpc`` channel) both satisfy it; the protocol servers (imap/, pop3/, dav/, web/) type against
these protocols, never against a concrete class.

* ``MailboxOps``: the blocking mailbox API, for code that runs on the handle's own thread (a
  function passed to ``MailboxHandle.run`` gets ``handle.mailbox``, which meets it).
* ``MailboxHandle``: the same API as coroutines, plus ``run``, ``drain`` and ``release``.
* ``MailStoreAPI``: what a process asks of the store: ``open`` a handle with a session's keys,
  seal mail into a spool (``deliver``/``deliver_async``) and announce it (``spool_appended``), and
  the POP3 maildrop lock (``lock_maildrop``).

``MAILBOX_METHODS`` names the mailbox calls a remote session may make: the RPC server refuses any
other name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import ParamSpec, Protocol, TypeVar

from sealmail.crypto.keys import MailboxSecrets
from sealmail.crypto.sealed import Buffer
from sealmail.store.dav import DavCollection, DavItem, DavLimits, NewItem
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

T = TypeVar("T")
P = ParamSpec("P")

# The mailbox calls of the contract, in the order of the classes below (``store.rpc`` allows only these).
MAILBOX_METHODS: frozenset[str] = frozenset(
    (
        "list_folders",
        "folder",
        "create_folder",
        "delete_folder",
        "rename_folder",
        "set_subscribed",
        "subscriptions",
        "status",
        "usage",
        "keywords",
        "append",
        "append_many",
        "uids",
        "messages",
        "maildrop",
        "expunged_since",
        "search",
        "sort",
        "thread_messages",
        "claim_recent",
        "store_flags",
        "copy",
        "move",
        "expunge",
        "remove",
        "learning_jobs",
        "finish_learning",
        "header",
        "headers",
        "envelopes",
        "structures",
        "structure",
        "envelope_values",
        "bodystructure_values",
        "section",
        "sections",
        "binary_section",
        "binary_size",
        "raw",
        "raws",
        "email_ids",
        "previews",
        "dav_collections",
        "dav_collection",
        "dav_find_collection",
        "dav_create_collection",
        "dav_set_props",
        "dav_delete_collection",
        "dav_ensure_defaults",
        "dav_items",
        "dav_item_heads",
        "dav_get_items",
        "dav_get_item",
        "dav_items_in_range",
        "dav_card_hrefs",
        "dav_card_hrefs_with",
        "dav_has_uid",
        "dav_changes",
        "dav_put_item",
        "dav_delete_item",
        "dav_move_item",
    )
)


class MailboxOps(Protocol):
    """The blocking mailbox API (``store.mailbox.Mailbox``, or a remote session's proxy of it)."""

    @property
    def mailbox_id(self) -> str: ...

    @property
    def quota(self) -> int | None: ...

    def dav_transaction(self) -> AbstractContextManager[object]:
        """DAV writes of one request in one transaction (a remote store makes each call its own)."""
        ...

    def list_folders(self) -> list[Folder]: ...

    def folder(self, name: str) -> Folder: ...

    def create_folder(self, name: str, special_use: str | None = None) -> Folder: ...

    def delete_folder(self, name: str) -> None: ...

    def rename_folder(self, old: str, new: str) -> None: ...

    def set_subscribed(self, name: str, subscribed: bool) -> None: ...

    def subscriptions(self) -> list[str]: ...

    def status(self, name: str) -> FolderStatus: ...

    def usage(self) -> int: ...

    def keywords(self) -> list[str]: ...

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult: ...

    def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]: ...

    def uids(self, folder: str) -> list[int]: ...

    def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]: ...

    def maildrop(self, folder: str = INBOX) -> Maildrop: ...

    def expunged_since(self, folder: str, modseq: int) -> list[int]: ...

    def search(self, folder: str, key: SearchKey) -> list[int]: ...

    def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]: ...

    def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]: ...

    def claim_recent(self, folder: str) -> set[int]: ...

    def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult: ...

    def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult: ...

    def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult: ...

    def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]: ...

    def remove(self, folder: str, uids: Iterable[int]) -> list[int]: ...

    def learning_jobs(self, limit: int) -> list[LearnJob]: ...

    def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int: ...

    def header(self, body_id: int) -> bytes: ...

    def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]: ...

    def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    def structures(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    def structure(self, body_id: int) -> str: ...

    def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]: ...

    def bodystructure_values(self, body_ids: Iterable[int], *, extensible: bool = True) -> dict[int, ImapValue]: ...

    def section(self, body_id: int, section: str) -> bytes | None: ...

    def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]: ...

    def binary_section(self, body_id: int, part: str) -> bytes | None: ...

    def binary_size(self, body_id: int, part: str) -> int | None: ...

    def raw(self, body_id: int) -> bytes: ...

    def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]: ...

    def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]: ...

    def dav_collections(self) -> list[DavCollection]: ...

    def dav_collection(self, name: str) -> DavCollection: ...

    def dav_find_collection(self, name: str) -> DavCollection | None: ...

    def dav_create_collection(
        self,
        name: str,
        kind: str,
        props: Mapping[str, str] | None = None,
        items: Iterable[NewItem] | None = None,
        *,
        replace: bool = False,
        limits: DavLimits | None = None,
    ) -> DavCollection: ...

    def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection: ...

    def dav_delete_collection(self, name: str) -> None: ...

    def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool: ...

    def dav_items(self, name: str) -> list[DavItem]: ...

    def dav_item_heads(self, name: str) -> list[DavItem]: ...

    def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]: ...

    def dav_get_item(self, name: str, href: str) -> DavItem | None: ...

    def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]: ...

    def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]: ...

    def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]: ...

    def dav_has_uid(self, name: str, uid: str) -> bool: ...

    def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]: ...

    def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]: ...

    def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem: ...

    def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem: ...


class MailboxHandle(Protocol):
    """A session's handle on one mailbox: the API as coroutines, each call in order on the mailbox's thread."""

    @property
    def mailbox_id(self) -> str: ...

    @property
    def mailbox(self) -> MailboxOps: ...

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args)`` on the handle's thread, where ``handle.mailbox`` may be called directly."""
        ...

    async def drain(self) -> DrainResult: ...

    async def release(self) -> None: ...

    async def list_folders(self) -> list[Folder]: ...

    async def folder(self, name: str) -> Folder: ...

    async def create_folder(self, name: str, special_use: str | None = None) -> Folder: ...

    async def delete_folder(self, name: str) -> None: ...

    async def rename_folder(self, old: str, new: str) -> None: ...

    async def set_subscribed(self, name: str, subscribed: bool) -> None: ...

    async def subscriptions(self) -> list[str]: ...

    async def status(self, name: str) -> FolderStatus: ...

    async def usage(self) -> int: ...

    async def keywords(self) -> list[str]: ...

    async def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        enforce_quota: bool = True,
    ) -> AppendResult: ...

    async def append_many(
        self, folder: str, items: Iterable[tuple[bytes, Iterable[str], datetime | None]], *, enforce_quota: bool = True
    ) -> list[AppendResult]: ...

    async def uids(self, folder: str) -> list[int]: ...

    async def messages(
        self, folder: str, uids: Iterable[int] | None = None, *, changed_since: int | None = None
    ) -> list[MessageInfo]: ...

    async def maildrop(self, folder: str = INBOX) -> Maildrop: ...

    async def expunged_since(self, folder: str, modseq: int) -> list[int]: ...

    async def search(self, folder: str, key: SearchKey) -> list[int]: ...

    async def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]: ...

    async def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]: ...

    async def claim_recent(self, folder: str) -> set[int]: ...

    async def store_flags(
        self,
        folder: str,
        uids: Iterable[int],
        mode: StoreMode,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult: ...

    async def copy(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult: ...

    async def move(self, source: str, uids: Iterable[int], target: str, *, learn: str | None = None) -> CopyResult: ...

    async def expunge(self, folder: str, uids: Iterable[int] | None = None) -> list[int]: ...

    async def remove(self, folder: str, uids: Iterable[int]) -> list[int]: ...

    async def learning_jobs(self, limit: int) -> list[LearnJob]: ...

    async def finish_learning(self, done: Iterable[LearnJob], failed: Iterable[LearnJob], max_attempts: int) -> int: ...

    async def header(self, body_id: int) -> bytes: ...

    async def headers(self, body_ids: Iterable[int]) -> dict[int, bytes]: ...

    async def envelopes(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    async def structures(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    async def structure(self, body_id: int) -> str: ...

    async def envelope_values(self, body_ids: Iterable[int]) -> dict[int, ImapValue]: ...

    async def bodystructure_values(
        self, body_ids: Iterable[int], *, extensible: bool = True
    ) -> dict[int, ImapValue]: ...

    async def section(self, body_id: int, section: str) -> bytes | None: ...

    async def sections(self, body_ids: Iterable[int], section: str) -> dict[int, bytes | None]: ...

    async def binary_section(self, body_id: int, part: str) -> bytes | None: ...

    async def binary_size(self, body_id: int, part: str) -> int | None: ...

    async def raw(self, body_id: int) -> bytes: ...

    async def raws(self, body_ids: Iterable[int]) -> dict[int, bytes]: ...

    async def email_ids(self, body_ids: Iterable[int]) -> dict[int, str]: ...

    async def previews(self, body_ids: Iterable[int], lazy: bool = False) -> dict[int, str | None]: ...

    async def dav_collections(self) -> list[DavCollection]: ...

    async def dav_collection(self, name: str) -> DavCollection: ...

    async def dav_find_collection(self, name: str) -> DavCollection | None: ...

    async def dav_create_collection(
        self,
        name: str,
        kind: str,
        props: Mapping[str, str] | None = None,
        items: Iterable[NewItem] | None = None,
        *,
        replace: bool = False,
        limits: DavLimits | None = None,
    ) -> DavCollection: ...

    async def dav_set_props(self, name: str, props: Mapping[str, str]) -> DavCollection: ...

    async def dav_delete_collection(self, name: str) -> None: ...

    async def dav_ensure_defaults(self, defaults: Iterable[tuple[str, str, Mapping[str, str]]]) -> bool: ...

    async def dav_items(self, name: str) -> list[DavItem]: ...

    async def dav_item_heads(self, name: str) -> list[DavItem]: ...

    async def dav_get_items(self, name: str, hrefs: Iterable[str]) -> dict[str, DavItem]: ...

    async def dav_get_item(self, name: str, href: str) -> DavItem | None: ...

    async def dav_items_in_range(self, name: str, component: str | None, start: int, end: int) -> list[DavItem]: ...

    async def dav_card_hrefs(self, name: str, prop: str, needle: str) -> set[str]: ...

    async def dav_card_hrefs_with(self, name: str, prop: str) -> set[str]: ...

    async def dav_has_uid(self, name: str, uid: str) -> bool: ...

    async def dav_changes(self, name: str, since: int | None) -> tuple[int, list[str]]: ...

    async def dav_put_item(
        self,
        name: str,
        item: NewItem,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        limits: DavLimits | None = None,
    ) -> tuple[DavItem, DavItem | None]: ...

    async def dav_delete_item(self, name: str, href: str, *, if_match: str | None = None) -> DavItem: ...

    async def dav_move_item(
        self, source: str, href: str, target: str, target_href: str, *, limits: DavLimits | None = None
    ) -> DavItem: ...


class ExclusiveLease(Protocol):
    """An exclusive lock the store granted (``MailStoreAPI.lock_maildrop``), held until ``release``."""

    async def release(self) -> None: ...


class MailStoreAPI(Protocol):
    """What a process asks of the store (``MailStore`` here, ``RemoteMailStore`` on a data host)."""

    async def lock_maildrop(self, handle: MailboxHandle) -> ExclusiveLease | None:
        """The mailbox's exclusive POP3 lock (RFC 1939 §8) for the session holding ``handle``, or None
        when another session on any front-end holds it. It ends at ``release`` or with the session."""
        ...

    async def open(self, mailbox_id: str, secrets: MailboxSecrets, *, quota: int | None = None) -> MailboxHandle: ...

    def deliver(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int: ...

    async def deliver_async(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int: ...

    def deliver_sealed(self, mailbox_id: str, entry_id: str, sealed: bytes) -> int:
        """Append a record sealed elsewhere, once per ``entry_id`` (a repeat appends nothing)."""
        ...

    async def spool_appended(self, mailbox_id: str) -> None: ...

    def spool_size(self, mailbox_id: str) -> int:
        """Sealed records waiting in the mailbox's spool (the MX's quota check counts them)."""
        ...

    async def close(self) -> None: ...
