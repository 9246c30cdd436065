"""What a component process shares across its connections: config store, Redis, bus, mailboxes.

Built once per process from the settings and passed down (no module-level singletons).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sealmail.config import open_store
from sealmail.net import redisconn
from sealmail.net.coalesce import Coalescer
from sealmail.net.limits import LoginLimiter, memory_limiter
from sealmail.net.redisconn import Subscriber
from sealmail.services import revocation
from sealmail.services.logins import Logins
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import LogEntry
    from sealmail.settings import Settings
    from sealmail.store.contract import MailStoreAPI


class AppContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config: ConfigStore = open_store(settings)
        self.redis: Any = None
        # One pub/sub connection per process, shared by the change bus and the revocation bus.
        self.subscriber: Subscriber | None = None
        found = redisconn.connector(settings)  # plain Redis or through Sentinel: net.redisconn knows
        if found is not None:
            self.redis = found.client()
            self.subscriber = Subscriber(found)
            self.bus: ev.ChangeBus = ev.RedisBus(found, self.subscriber)
            self.limiter: LoginLimiter = LoginLimiter(self.redis)
        else:
            # One process on its own (tests, tools): events and limits stay in memory.
            self.bus = ev.InProcessBus()
            self.limiter = memory_limiter()
        # The mailboxes: the files under data_dir, or a data host's store component (store_url).
        if settings.store_urls is not None:  # several data hosts: each mailbox on its home (store.routing)
            from sealmail.store.routing import RoutingMailStore

            self.mailstore: MailStoreAPI = RoutingMailStore.from_settings(settings, self.config)
        elif settings.store_url is not None:
            from sealmail.store.remote import RemoteMailStore

            self.mailstore = RemoteMailStore.from_settings(settings)
        else:
            self.mailstore = MailStore(settings.data_dir, self.bus)
        # Ends sessions whose account's credentials changed on any process (services.revocation).
        self.revocations: revocation.RevocationBus = revocation.make_bus(settings, self.subscriber)
        # Password checks: on a pool of their own, and remembered briefly (services.logins).
        self.logins = Logins(settings, self.revocations)
        self._log_lines: Coalescer[LogEntry] = Coalescer(self._append_logs)

    async def config_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a (blocking) config-store call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def log_event(self, entry: LogEntry) -> None:
        """Append to the delivery/error log; a log that cannot be written never stops mail.

        The entries of concurrent messages go together, in one transaction (or one trip to a data
        host's config store) per batch: ``net.coalesce``."""
        try:
            await self._log_lines.submit([entry])
        except Exception:
            logging.getLogger("sealmail").warning("could not write the delivery log", exc_info=True)

    async def _append_logs(self, entries: list[LogEntry]) -> None:
        await self.config_call(self.config.append_logs, entries)

    async def close(self) -> None:
        await self._log_lines.drain()
        self.logins.close()
        await self.mailstore.close()
        await self.bus.close()
        await self.revocations.close()
        if self.subscriber is not None:
            await self.subscriber.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.config.close()
