"""The store component with the config store's mailbox homes (``sealmail serve store``).

``store`` does not import ``config``: this wiring gives the store server the config store, where it
records the mailboxes it creates as living on this host (``store_host``) and checks that a mailbox
it is asked to open or write lives here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.config import open_store
from sealmail.store.server import StoreComponent

if TYPE_CHECKING:
    from sealmail.settings import Settings


def store_component(settings: Settings) -> StoreComponent:
    return StoreComponent(settings, homes=lambda: open_store(settings))
