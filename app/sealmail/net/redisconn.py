"""The one place that knows how to reach the shared Redis: directly, or through Redis Sentinel.

Every Redis client of the app comes from a ``RedisConnector`` (``connector(settings)``): the
config store's neighbours (login limiter, dedup, web sessions, POP3 delays) use ``client()``,
blocking callers (``sealmail status``, ``revocation.announce``) ``sync_client()``, and the pub/sub
users (the change bus, the revocation bus) share one ``Subscriber`` per process.

With ``redis_sentinels`` set, clients are redis-py's own Sentinel-managed ones: each new connection
asks the sentinels for the current master of ``redis_sentinel_master``, and a connection to a
master that died or was demoted fails and is replaced by one to the new master. ``redis_url``
then gives only the data nodes' password, database and TLS.

Pub/sub is at-most-once: whatever was published while a subscriber was away is lost. The
``Subscriber`` therefore tells its users every time it subscribes *again* (``on_resync``): they
re-read the state they would have learnt from the lost messages (IMAP sessions their folder,
spool watchers their spool, the revocation bus its sessions' credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis

    from sealmail.settings import Settings

log = logging.getLogger("sealmail.redis")

# Sentinel mode: how long a dead host may hold a client up (a local SIGKILL is seen at once).
SENTINEL_CONNECT_TIMEOUT = 2.0
SENTINEL_SOCKET_TIMEOUT = 5.0
SENTINEL_QUERY_TIMEOUT = 1.0  # a sentinel that does not answer within this is skipped


# TLS options of a ``rediss://`` URL's query (as redis-py's ``from_url`` reads them), e.g. a
# deployment's own CA: ``rediss://:pw@sentinel/0?ssl_ca_certs=/etc/sealmail/redis-ca.pem``.
_TLS_QUERY = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


def _tls_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return {}
    query = parse_qs(parts.query)
    return {"ssl": True, **{key: query[key][-1] for key in _TLS_QUERY if query.get(key)}}


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class RedisConnector:
    """How to reach the shared Redis (``url`` alone, or ``url`` credentials plus sentinels)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "sealmail"
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_tls: bool = False

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def _data_kwargs(self) -> dict[str, Any]:
        """Password, user, database and TLS of the data nodes, from ``url`` (Sentinel mode)."""
        parts = urlsplit(self.url)
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT,
            "socket_timeout": SENTINEL_SOCKET_TIMEOUT,
        }
        if parts.username:
            kwargs["username"] = unquote(parts.username)
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        path = parts.path.strip("/")
        if path.isdigit():
            kwargs["db"] = int(path)
        kwargs.update(_tls_options(self.url))
        return kwargs

    @staticmethod
    def _retry(asynchronous: bool) -> Any:
        """As redis-py's plain clients do: a command on a connection that died with the old master is
        tried again on a new one (the pool then asks the sentinels), a few times, briefly.

        Only a refused or reset connection is tried again, not a timeout: a node that answers
        nothing (its host vanished: no reset) would cost a whole socket timeout per try, so the
        caller would wait four of them; after one, the next command finds the new master."""
        from redis.backoff import ExponentialWithJitterBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        if asynchronous:
            from redis.asyncio.retry import Retry as AsyncRetry

            return AsyncRetry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3, (RedisConnectionError,))
        from redis.retry import Retry

        return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3, (RedisConnectionError,))

    def _sentinel_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": SENTINEL_QUERY_TIMEOUT,
            "socket_timeout": SENTINEL_QUERY_TIMEOUT,
        }
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        if self.sentinel_tls:
            # The sentinels' certificates come from the same CA as the data nodes' (the URL's).
            kwargs.update({"ssl": True, **{k: v for k, v in _tls_options(self.url).items() if k != "ssl"}})
        return kwargs

    def client(self, **kwargs: Any) -> aioredis.Redis:
        """An asyncio client (connections made lazily; ``aclose()`` it)."""
        import redis.asyncio as aioredis

        if not self.uses_sentinel:
            return aioredis.Redis.from_url(self.url, **kwargs)
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs())  # type: ignore[no-untyped-call]
        options = {**self._data_kwargs(), "retry": self._retry(True), **kwargs}
        client: aioredis.Redis = sentinel.master_for(self.master, redis_class=_SentinelRedis, **options)
        client._sentinel = sentinel  # type: ignore[attr-defined]
        return client

    def sync_client(self, **kwargs: Any) -> redis.Redis:
        """A blocking client (``close()`` it)."""
        import redis as syncredis

        if not self.uses_sentinel:
            return syncredis.Redis.from_url(self.url, **kwargs)
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs())  # type: ignore[no-untyped-call]
        options = {**self._data_kwargs(), "retry": self._retry(False), **kwargs}
        client: redis.Redis = sentinel.master_for(self.master, redis_class=_SyncSentinelRedis, **options)  # type: ignore[no-untyped-call]
        client._sentinel = sentinel  # type: ignore[attr-defined]
        return client


def _sentinel_client_classes() -> tuple[type[Any], type[Any]]:
    import redis as syncredis
    import redis.asyncio as aioredis

    class SentinelRedis(aioredis.Redis):
        """A master client that also closes its sentinel connections."""

        _sentinel: Any = None

        async def aclose(self, close_connection_pool: bool | None = None) -> None:
            await super().aclose(close_connection_pool)
            if self._sentinel is not None:
                await self._sentinel.aclose()
                self._sentinel = None

    class SyncSentinelRedis(syncredis.Redis):
        _sentinel: Any = None

        def close(self) -> None:
            super().close()
            if self._sentinel is not None:
                self._sentinel.close()
                self._sentinel = None

    return SentinelRedis, SyncSentinelRedis


_SentinelRedis, _SyncSentinelRedis = _sentinel_client_classes()


DEMOTED_RETRIES = 5  # publishes tried again on a fresh connection when the node answered as a replica
DEMOTED_PAUSE = 0.1  # seconds between them (a sentinel may name the old master a moment longer)


async def publish(client: aioredis.Redis, channel: str, data: bytes | str, *, sentinel: bool) -> int:
    """PUBLISH, and in Sentinel mode make sure it reached the master (``publish_many``)."""
    if not sentinel:  # one command, no pipeline needed
        return int(await client.publish(channel, data))
    (receivers,) = await publish_many(client, [(channel, data)], sentinel=sentinel)
    return receivers


async def publish_many(
    client: aioredis.Redis, messages: Sequence[tuple[str, bytes | str]], *, sentinel: bool
) -> list[int]:
    """PUBLISH each (channel, data) in one round trip; in Sentinel mode make sure they reached the master.

    PUBLISH is accepted by a replica too, and reaches only that node's subscribers: a connection
    left on a demoted master (made while a sentinel still named it, or not ended by Sentinel's
    ``CLIENT KILL`` when it demoted the node) would announce to nobody, with no error. So the
    publishes go in one round trip with ``ROLE``; when the node is not the master, the pool's
    connections are dropped (the next one asks the sentinels) and the publishes are made again."""
    for attempt in range(DEMOTED_RETRIES + 1):
        async with client.pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.publish(channel, data)
            if sentinel:
                pipe.execute_command("ROLE")
            answers = await pipe.execute()
        if not sentinel:
            return [int(n) for n in answers]
        role = answers[-1]
        name = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
        if name == "master":
            return [int(n) for n in answers[:-1]]
        if attempt == 0:
            log.warning("Redis publish reached a %s, not the master; reconnecting through the sentinels", name)
        await client.connection_pool.disconnect()
        await asyncio.sleep(DEMOTED_PAUSE)
    raise ConnectionError("the sentinels keep naming a node that is not the master")


def connector(settings: Settings) -> RedisConnector | None:
    """The settings' Redis, or None when the process has none (one process on its own)."""
    if settings.redis_url is None:
        return None
    return RedisConnector(
        url=settings.redis_url.get_secret_value(),
        sentinels=tuple(_host_port(s) for s in settings.redis_sentinels),
        master=settings.redis_sentinel_master,
        sentinel_password=(
            settings.redis_sentinel_password.get_secret_value() if settings.redis_sentinel_password else None
        ),
        sentinel_tls=settings.redis_sentinel_tls,
    )


def as_connector(source: RedisConnector | str) -> RedisConnector:
    return source if isinstance(source, RedisConnector) else RedisConnector(url=source)


MessageHandler = Callable[[bytes], None]
ResyncHandler = Callable[[], None]

RETRY_SECONDS = 0.25  # between attempts to subscribe again
MASTER_CHECK_SECONDS = 1.0  # Sentinel mode: how often the subscriber asks who the master is


class Subscriber:
    """One pub/sub connection per process, read by one task, with a handler per channel.

    ``subscribe`` registers a channel's handler; when the connection is up it subscribes at once,
    otherwise the reader subscribes every registered channel when it is back. On every subscription
    after the first, every ``on_resync`` callback runs: messages published in between are lost.
    Handlers run on the reader's event loop and must not block.
    """

    def __init__(self, source: RedisConnector | str) -> None:
        self.connector = as_connector(source)
        self._client: Any = None
        self._handlers: dict[str, MessageHandler] = {}
        self._resync: list[ResyncHandler] = []
        self._pubsub: Any = None
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.subscriptions = 0  # how many times the reader subscribed (tests and status)

    def on_resync(self, callback: ResyncHandler) -> None:
        self._resync.append(callback)

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    async def subscribe(self, channel: str, handler: MessageHandler) -> None:
        self._handlers[channel] = handler
        if self._reader is None:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No silent reconnects inside redis-py: this reader must see each one, to resync.
            self._client = self.connector.client(retry=Retry(NoBackoff(), 0))
            self._reader = asyncio.create_task(self._run(), name="sealmail-redis-subscriber")
            # The first connection: wait for it briefly, so a subscription usually holds on return.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), SENTINEL_CONNECT_TIMEOUT * 2)
        async with self._lock:
            if self._pubsub is not None:
                try:
                    await self._pubsub.subscribe(channel)
                except Exception:  # the reader sees the failure too, and subscribes again with a resync
                    log.warning("Redis subscription to a channel failed; it is retried", exc_info=True)

    async def unsubscribe(self, channel: str) -> None:
        if self._handlers.pop(channel, None) is None:
            return
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(channel)

    async def _connect(self) -> Any:
        async with self._lock:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                channels = list(self._handlers)
                # An empty subscription list still needs a live connection to prove Redis is back.
                await (pubsub.subscribe(*channels) if channels else pubsub.ping())
            except BaseException:
                await pubsub.aclose()
                raise
            self._pubsub = pubsub
            return pubsub

    async def _run(self) -> None:
        failures = 0
        while True:
            pubsub = None
            try:
                pubsub = await self._connect()
                self.subscriptions += 1
                if failures or self.subscriptions > 1:
                    log.info("Redis subscriber subscribed again; users re-check what they may have missed")
                    self._fire_resync()
                failures = 0
                self._up.set()
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("Redis subscriber lost its connection (%s); subscribing again", type(exc).__name__)
            finally:
                self._pubsub = None
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            await asyncio.sleep(RETRY_SECONDS)

    async def _read(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + MASTER_CHECK_SECONDS
        while True:
            message = await pubsub.get_message(timeout=MASTER_CHECK_SECONDS)
            if message is not None and message.get("type") in ("message", "pmessage"):
                name = message["channel"]
                handler = self._handlers.get(name.decode() if isinstance(name, bytes) else name)
                if handler is not None:
                    try:
                        handler(message["data"])
                    except Exception:
                        log.exception("a Redis message handler failed")
            if self.connector.uses_sentinel and loop.time() >= next_check:
                next_check = loop.time() + MASTER_CHECK_SECONDS
                await self._check_master(pubsub)

    async def _check_master(self, pubsub: Any) -> None:
        """Sentinel mode: a subscriber still on a demoted or unreachable master hears nothing, and no
        error says so (a host gone without a reset). Leave it when the sentinels name another."""
        conn = pubsub.connection
        if conn is None:
            return
        pool = self._client.connection_pool
        try:
            address = await pool.sentinel_manager.discover_master(self.connector.master)
        except Exception:
            return  # the sentinels themselves unreachable: keep what works
        if (conn.host, conn.port) != tuple(address):
            raise ConnectionError(f"the master moved to {address[0]}:{address[1]}")

    def _fire_resync(self) -> None:
        for callback in list(self._resync):
            try:
                callback()
            except Exception:
                log.exception("a Redis resync handler failed")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
