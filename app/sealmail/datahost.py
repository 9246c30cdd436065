"""``sealmail serve store`` on a data host: the mailbox store component, plus the shared job queue.

The store component (``store.server``) answers the mailbox contract; in multi-server mode the job
queue lives on the same host and is offered through the same channel (``queue.service``), so that a
front-end that dies strands no job. The store records the mailboxes it creates as living on this
host (``store_host``) in the config store, and refuses one that lives on another data host. The
store package knows nothing of the queue or the config store: this module joins them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sealmail.config import open_store
from sealmail.queue.service import QueueService
from sealmail.store.server import Extension, StoreComponent

if TYPE_CHECKING:
    from sealmail.settings import Settings


class DataHostComponent(StoreComponent):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, homes=lambda: open_store(settings))
        self.queue = QueueService.from_settings(settings)

    def extensions(self) -> Mapping[str, Extension]:
        return self.queue.methods()

    async def stop(self) -> None:
        await super().stop()
        self.queue.close()
