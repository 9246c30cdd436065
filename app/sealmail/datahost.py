"""``sealmail serve store`` on a data host: the mailbox store component, plus the shared job queue.

The store component (``store.server``) answers the mailbox contract; in multi-server mode the job
queue lives on the same host and is offered through the same channel (``queue.service``), so that a
front-end that dies strands no job. The store package itself knows nothing of the queue: this
module joins the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sealmail.queue.service import QueueService
from sealmail.store.server import Extension, StoreComponent

if TYPE_CHECKING:
    from sealmail.settings import Settings


class DataHostComponent(StoreComponent):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.queue = QueueService.from_settings(settings)

    def extensions(self) -> Mapping[str, Extension]:
        return self.queue.methods()

    async def stop(self) -> None:
        await super().stop()
        self.queue.close()
