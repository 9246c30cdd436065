"""Change events and the bus that carries them (mox's ChangeAddUID and friends).

Every mutation commits first, then publishes a typed event so IMAP IDLE sessions on any process or
host learn of it. Events carry only ids and numbers (folder id, UIDs, MODSEQ): no folder names,
flag names or message data ever leave the encrypted file this way. A session receiving one
re-reads what it needs from the mailbox.

Two buses behind one interface and one contract test: ``InProcessBus`` (a single process, tests)
and ``RedisBus`` (Redis pub/sub, one shared subscription connection per process).
Pub/sub is at-most-once: when the bus subscribes again after a gap, every subscription gets a
``Resync`` event and its holder re-reads what it watches (IMAP: the folder's MODSEQ; the spool
watcher: the spool).
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sealmail.net.redisconn import RedisConnector, Subscriber

log = logging.getLogger("sealmail.store.events")


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    kind: ClassVar[str] = ""
    mailbox_id: str


@dataclass(frozen=True, slots=True)
class MessagesAdded(ChangeEvent):
    kind: ClassVar[str] = "added"
    folder_id: int = 0
    uids: tuple[int, ...] = ()
    modseq: int = 0


@dataclass(frozen=True, slots=True)
class FlagsChanged(ChangeEvent):
    kind: ClassVar[str] = "flags"
    folder_id: int = 0
    uids: tuple[int, ...] = ()
    modseq: int = 0


@dataclass(frozen=True, slots=True)
class MessagesExpunged(ChangeEvent):
    kind: ClassVar[str] = "expunged"
    folder_id: int = 0
    uids: tuple[int, ...] = ()
    modseq: int = 0


@dataclass(frozen=True, slots=True)
class FoldersChanged(ChangeEvent):
    """A folder was created, deleted, renamed or (un)subscribed."""

    kind: ClassVar[str] = "folders"


@dataclass(frozen=True, slots=True)
class SpoolAppended(ChangeEvent):
    """New sealed mail waits in the spool: a session holding the key should drain it."""

    kind: ClassVar[str] = "spool"


@dataclass(frozen=True, slots=True)
class CollectionsChanged(ChangeEvent):
    """Calendars or address books changed (DAV)."""

    kind: ClassVar[str] = "dav"
    collection: str = ""
    sync_token: int = 0


@dataclass(frozen=True, slots=True)
class Resync(ChangeEvent):
    """Events for this mailbox may have been lost (the bus subscribed again after a gap): re-read.

    Made by the bus itself on each subscriber, never published (pub/sub is at-most-once)."""

    kind: ClassVar[str] = "resync"


EVENT_TYPES: dict[str, type[ChangeEvent]] = {
    cls.kind: cls
    for cls in (MessagesAdded, FlagsChanged, MessagesExpunged, FoldersChanged, SpoolAppended, CollectionsChanged)
}


def encode_event(event: ChangeEvent) -> str:
    data = asdict(event)
    data["kind"] = event.kind
    return json.dumps(data, separators=(",", ":"))


def decode_event(text: str | bytes) -> ChangeEvent:
    data: dict[str, Any] = json.loads(text)
    cls = EVENT_TYPES[data.pop("kind")]
    if "uids" in data:
        data["uids"] = tuple(data["uids"])
    return cls(**data)


class Subscription:
    """Events for one mailbox, as an async iterator; leave with ``async with`` or ``close()``."""

    def __init__(self, bus: ChangeBus, mailbox_id: str) -> None:
        self.bus = bus
        self.mailbox_id = mailbox_id
        self.queue: asyncio.Queue[ChangeEvent] = asyncio.Queue(maxsize=10_000)
        self.overflowed = False

    def deliver(self, event: ChangeEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A session that does not read loses detail, not correctness: it must resynchronise.
            self.overflowed = True

    async def get(self, timeout: float | None = None) -> ChangeEvent | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ChangeEvent]:
        while True:
            yield await self.queue.get()

    async def close(self) -> None:
        await self.bus._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ChangeBus(ABC):
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    @abstractmethod
    async def publish(self, event: ChangeEvent) -> None: ...

    async def publish_many(self, events: list[ChangeEvent]) -> None:
        """Publish each, in order (a bus over a network does it in one round trip)."""
        for event in events:
            await self.publish(event)

    async def subscribe(self, mailbox_id: str) -> Subscription:
        sub = Subscription(self, mailbox_id)
        first = mailbox_id not in self._subscribers
        self._subscribers.setdefault(mailbox_id, set()).add(sub)
        if first:
            await self._listen(mailbox_id)
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.mailbox_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._subscribers[sub.mailbox_id]
            await self._unlisten(sub.mailbox_id)

    def _dispatch(self, event: ChangeEvent) -> None:
        for sub in list(self._subscribers.get(event.mailbox_id, ())):
            sub.deliver(event)

    def resync(self) -> None:
        """Tell every subscription that events may have been lost (``Resync``)."""
        for mailbox_id, subs in list(self._subscribers.items()):
            for sub in list(subs):
                sub.deliver(Resync(mailbox_id))

    async def _listen(self, mailbox_id: str) -> None:  # noqa: B027 - hook
        pass

    async def _unlisten(self, mailbox_id: str) -> None:  # noqa: B027 - hook
        pass

    async def close(self) -> None:  # noqa: B027 - hook
        pass


class InProcessBus(ChangeBus):
    async def publish(self, event: ChangeEvent) -> None:
        self._dispatch(event)


def channel(mailbox_id: str) -> str:
    return f"sealmail:changes:{mailbox_id}"


class RedisBus(ChangeBus):
    """Redis pub/sub: one publishing client per process, and the process's one ``Subscriber``
    (``net.redisconn``) with a channel per mailbox listened to. Each time the subscriber subscribes
    again (a dropped connection, a Sentinel failover), every subscription gets ``Resync``."""

    def __init__(self, source: RedisConnector | str, subscriber: Subscriber | None = None) -> None:
        super().__init__()
        from sealmail.net.redisconn import Subscriber, as_connector, publish, publish_many

        connector = as_connector(source)
        self._client = connector.client()
        self._sentinel = connector.uses_sentinel
        self._publish = publish  # Sentinel mode: only on the master (net.redisconn.publish)
        self._publish_many = publish_many
        self._own_subscriber = subscriber is None
        self.subscriber = subscriber if subscriber is not None else Subscriber(connector)
        self.subscriber.on_resync(self.resync)

    async def publish(self, event: ChangeEvent) -> None:
        await self._publish(self._client, channel(event.mailbox_id), encode_event(event), sentinel=self._sentinel)

    async def publish_many(self, events: list[ChangeEvent]) -> None:
        messages = [(channel(e.mailbox_id), encode_event(e)) for e in events]
        await self._publish_many(self._client, messages, sentinel=self._sentinel)

    async def _listen(self, mailbox_id: str) -> None:
        await self.subscriber.subscribe(channel(mailbox_id), self._on_message)

    async def _unlisten(self, mailbox_id: str) -> None:
        await self.subscriber.unsubscribe(channel(mailbox_id))

    def _on_message(self, data: bytes) -> None:
        try:
            self._dispatch(decode_event(data))
        except (ValueError, KeyError, TypeError):
            log.warning("change bus: ignored a malformed event")

    async def close(self) -> None:
        if self._own_subscriber:
            await self.subscriber.close()
        await self._client.aclose()
