"""``sealmail serve store`` on a data host: the mailbox store component, plus the shared job queue
and (for ``SEALMAIL_CONFIG_BACKEND=store`` front-ends) this host's config store.

The store component (``store.server``) answers the mailbox contract; in multi-server mode the job
queue lives on the same host and is offered through the same channel (``queue.service``), so that a
front-end that dies strands no job. The store records the mailboxes it creates as living on this
host (``store_host``) in the config store, and refuses one that lives on another data host. The
same config store (whatever this host's own backend is: normally the embedded SQLite file) answers
the front-ends' ``config.<method>`` calls (``wire.CONFIG_METHODS``, ``config.remote``), each on a
worker thread; their arguments are never logged. The store package knows nothing of the queue or
the config store: this module joins them.

Several data hosts without MongoDB: the first one serves the config store; another data host reads
it from there (``config_backend=store`` with ``store_url`` the first one's, its own certificate as
client certificate) for the mailbox homes, and serves no config calls itself.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sealmail.config import ConfigStore, open_store, wire
from sealmail.queue.service import QueueService
from sealmail.store.server import Extension, StoreComponent

if TYPE_CHECKING:
    from sealmail.settings import Settings


async def _config_call(pool: ThreadPoolExecutor, config: ConfigStore, method: str, *args: Any, **kwargs: Any) -> Any:
    call = functools.partial(getattr(config, method), *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


class DataHostComponent(StoreComponent):
    def __init__(self, settings: Settings) -> None:
        if settings.config_backend == "store" and not settings.store_host:
            raise ValueError(
                "the data host serves the config store to the other hosts: SEALMAIL_CONFIG_BACKEND=store is for "
                "those (and for a further data host, named by SEALMAIL_STORE_HOST); give this host sqlite (the "
                "default) or mongodb"
            )
        super().__init__(settings, homes=self._open_config)
        self.queue = QueueService.from_settings(settings)
        self.config: ConfigStore | None = None
        # The front-ends' config calls (every login, every RCPT) get threads of their own: on the
        # shared default executor they queued behind mailbox and queue work on a busy data host.
        self._config_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sealmail-config")

    def _open_config(self) -> ConfigStore:
        self.config = open_store(self.settings)
        return self.config

    def extensions(self) -> Mapping[str, Extension]:
        methods = dict(self.queue.methods())
        # Opened by ``start`` before it asks for these; a data host reading another's config serves none.
        if self.config is not None and self.settings.config_backend != "store":
            for name in wire.CONFIG_METHODS:
                methods[wire.CONFIG_PREFIX + name] = functools.partial(
                    _config_call, self._config_pool, self.config, name
                )
        return methods

    async def stop(self) -> None:
        await super().stop()
        self._config_pool.shutdown(wait=True)
        self.queue.close()
