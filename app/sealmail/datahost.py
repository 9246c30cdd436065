"""``sealmail serve store`` on a data host: the mailbox store component, plus the shared job queue
and (for ``SEALMAIL_CONFIG_BACKEND=store`` front-ends) this host's config store.

The store component (``store.server``) answers the mailbox contract; in multi-server mode the job
queue lives on the same host and is offered through the same channel (``queue.service``), so that a
front-end that dies strands no job. The store records the mailboxes it creates as living on this
host (``store_host``) in the config store, and refuses one that lives on another data host. The
same config store (whatever this host's own backend is: normally the embedded SQLite file) answers
the front-ends' ``config.<method>`` calls (``rpc.CONFIG_METHODS``, ``config.remote``), each on a
worker thread; their arguments are never logged. The store package knows nothing of the queue or
the config store: this module joins them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sealmail.config import ConfigStore, open_store
from sealmail.queue.service import QueueService
from sealmail.store import rpc
from sealmail.store.server import Extension, StoreComponent

if TYPE_CHECKING:
    from sealmail.settings import Settings


async def _config_call(config: ConfigStore, method: str, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(getattr(config, method), *args, **kwargs)


class DataHostComponent(StoreComponent):
    def __init__(self, settings: Settings) -> None:
        if settings.config_backend == "store":
            raise ValueError(
                "the data host serves the config store to the other hosts: SEALMAIL_CONFIG_BACKEND=store is for "
                "those; give this host sqlite (the default) or mongodb"
            )
        super().__init__(settings, homes=self._open_config)
        self.queue = QueueService.from_settings(settings)
        self.config: ConfigStore | None = None

    def _open_config(self) -> ConfigStore:
        self.config = open_store(self.settings)
        return self.config

    def extensions(self) -> Mapping[str, Extension]:
        methods = dict(self.queue.methods())
        if self.config is not None:  # opened by ``start`` before it asks for these
            for name in rpc.CONFIG_METHODS:
                methods[rpc.CONFIG_PREFIX + name] = functools.partial(_config_call, self.config, name)
        return methods

    async def stop(self) -> None:
        await super().stop()
        self.queue.close()
