"""Several data hosts: each mailbox's calls go to the data host recorded as its home.

``AppContext`` uses ``RoutingMailStore`` on a front-end when ``store_urls`` names several data
hosts (``name=wss://…``; the names are the data hosts' ``store_host``). It meets ``MailStoreAPI``:

* the home of a mailbox is read from the config store (``MailboxHome``) and kept per process; a
  missing home is read again on every call (it may be recorded any moment), and a store that
  answers ``MailboxElsewhere`` (the mailbox moved) makes the router read it again and retry once
  on the new home;
* one ``RemoteMailStore`` (one WebSocket) per data host; a handle from ``open`` stays bound to its
  data host, so an IMAP or POP3 session, its POP3 lock and a DAV transaction all live there;
* a mailbox without a recorded home (made before homes were recorded) is served by the data host
  at ``store_url``, which also serves the config store and the job queue (``primary``);
* a data host that cannot be reached makes only its own mailboxes ``StoreUnavailable``.

New mailboxes are placed by ``services.mailboxes`` (``choose_home``): on the data host with the
fewest mailboxes homed there, the first named on a tie.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from sealmail.crypto.keys import MailboxSecrets
from sealmail.crypto.sealed import Buffer
from sealmail.store.errors import MailboxElsewhere, StoreUnavailable
from sealmail.store.remote import RemoteLease, RemoteMailbox, RemoteMailStore, client_tls

if TYPE_CHECKING:
    from sealmail.settings import Settings
    from sealmail.store.contract import MailboxHandle
    from sealmail.store.model import Filing

T = TypeVar("T")


class Home(Protocol):
    """A mailbox's home as the config store records it (``config.models.MailboxHome``)."""

    @property
    def host(self) -> str: ...


class HomeBook(Protocol):
    """Where the mailbox homes are read (the config store; the store package does not import it)."""

    def get_mailbox_home(self, mailbox_id: str) -> Home | None: ...

    def list_mailbox_homes(self, host: str | None = None) -> Sequence[Home]: ...


def choose_home(homes: HomeBook, names: Sequence[str]) -> str:
    """The data host a new mailbox goes to: the one with the fewest mailboxes homed there (the first
    named on a tie)."""
    if not names:
        raise ValueError("no data hosts to choose from")
    counts = {name: len(homes.list_mailbox_homes(name)) for name in names}
    return min(names, key=lambda name: counts[name])


class RoutingMailStore:
    """The ``MailStoreAPI`` of several data hosts, each mailbox's calls on its home host."""

    def __init__(self, stores: Mapping[str, RemoteMailStore], primary: RemoteMailStore, homes: HomeBook) -> None:
        self.stores = dict(stores)
        self.primary = primary
        self.homes = homes
        self._cache: dict[str, str] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, homes: HomeBook) -> RoutingMailStore:
        assert settings.store_urls is not None
        assert settings.store_url is not None
        assert settings.store_ca_file is not None
        assert settings.store_client_cert_file is not None
        assert settings.store_client_key_file is not None
        tls = client_tls(settings.store_ca_file, settings.store_client_cert_file, settings.store_client_key_file)
        by_url: dict[str, RemoteMailStore] = {}

        def store(url: str) -> RemoteMailStore:
            if url not in by_url:
                by_url[url] = RemoteMailStore(url, tls, timeout=settings.store_timeout)
            return by_url[url]

        stores = {name: store(url) for name, url in settings.store_urls.items()}
        return cls(stores, store(settings.store_url), homes)

    # ---- where a mailbox lives ----------------------------------------------------------------------
    def _read_home(self, mailbox_id: str) -> str | None:
        """The recorded home, read from the config store now (blocking: a worker thread)."""
        home = self.homes.get_mailbox_home(mailbox_id)
        with self._cache_lock:
            if home is None:
                self._cache.pop(mailbox_id, None)
                return None
            self._cache[mailbox_id] = home.host
            return home.host

    def _cached(self, mailbox_id: str) -> str | None:
        with self._cache_lock:
            return self._cache.get(mailbox_id)

    def _store_of(self, host: str | None) -> RemoteMailStore:
        if host is None:
            return self.primary
        store = self.stores.get(host)
        if store is None:
            raise StoreUnavailable(f"the mailbox lives on data host {host!r}, which this host has no URL for")
        return store

    async def home_store(self, mailbox_id: str, *, fresh: bool = False) -> RemoteMailStore:
        host = None if fresh else self._cached(mailbox_id)
        if host is None:
            host = await asyncio.to_thread(self._read_home, mailbox_id)
        return self._store_of(host)

    def home_store_blocking(self, mailbox_id: str, *, fresh: bool = False) -> RemoteMailStore:
        host = None if fresh else self._cached(mailbox_id)
        if host is None:
            host = self._read_home(mailbox_id)
        return self._store_of(host)

    async def _routed(self, mailbox_id: str, call: Callable[[RemoteMailStore], Awaitable[T]]) -> T:
        store = await self.home_store(mailbox_id)
        try:
            return await call(store)
        except MailboxElsewhere:
            moved = await self.home_store(mailbox_id, fresh=True)
            if moved is store:
                raise
            return await call(moved)

    def _routed_blocking(self, mailbox_id: str, call: Callable[[RemoteMailStore], T]) -> T:
        store = self.home_store_blocking(mailbox_id)
        try:
            return call(store)
        except MailboxElsewhere:
            moved = self.home_store_blocking(mailbox_id, fresh=True)
            if moved is store:
                raise
            return call(moved)

    # ---- MailStoreAPI -------------------------------------------------------------------------------
    async def open(self, mailbox_id: str, secrets: MailboxSecrets, *, quota: int | None = None) -> RemoteMailbox:
        return await self._routed(mailbox_id, lambda store: store.open(mailbox_id, secrets, quota=quota))

    async def lock_maildrop(self, handle: MailboxHandle) -> RemoteLease | None:
        """On the data host the handle's session lives on (where ``open`` found the mailbox)."""
        assert isinstance(handle, RemoteMailbox)
        return await handle.home.lock_maildrop(handle)

    def deliver(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        return self._routed_blocking(
            mailbox_id, lambda store: store.deliver(mailbox_id, public_key, raw, received_at, folder)
        )

    async def deliver_async(
        self,
        mailbox_id: str,
        public_key: bytes,
        raw: Buffer | Sequence[Buffer],
        received_at: datetime | None = None,
        folder: str | Filing = "INBOX",
    ) -> int:
        return await self._routed(
            mailbox_id, lambda store: store.deliver_async(mailbox_id, public_key, raw, received_at, folder)
        )

    def deliver_sealed(self, mailbox_id: str, entry_id: str, sealed: bytes) -> int:
        return self._routed_blocking(mailbox_id, lambda store: store.deliver_sealed(mailbox_id, entry_id, sealed))

    async def spool_appended(self, mailbox_id: str) -> None:
        await self._routed(mailbox_id, lambda store: store.spool_appended(mailbox_id))

    def spool_size(self, mailbox_id: str) -> int:
        return self._routed_blocking(mailbox_id, lambda store: store.spool_size(mailbox_id))

    async def close(self) -> None:
        seen: list[RemoteMailStore] = []
        for store in [self.primary, *self.stores.values()]:
            if not any(store is other for other in seen):
                seen.append(store)
        for store in seen:
            await store.close()
