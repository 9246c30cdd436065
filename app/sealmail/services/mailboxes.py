"""Creating and deleting mailbox files, wherever they live.

* One host (``store_url`` unset): the files under ``data_dir``, as always. On a data host whose
  ``store_host`` is set (its CLI, say), the mailbox's home is recorded too.
* Split mode (``store_url`` set): the data host's store component creates and deletes them
  (``create_mailbox``/``delete_mailbox`` on the store channel) and records or forgets the mailbox's
  home (``MailboxHome``) itself; nothing is written under this host's ``data_dir``. The new mailbox's
  key travels only inside that channel, for that one call.
* Several data hosts (``store_urls`` set): a new mailbox goes to the data host with the fewest
  mailboxes homed there (``store.routing.choose_home``); a mailbox is deleted on its recorded home
  (``store_url``'s data host when none is recorded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.store.errors import StoreUnavailable
from sealmail.store.mailstore import MailStore

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings


def create(config: ConfigStore, settings: Settings, mailbox_id: str, mailbox_key: bytes) -> None:
    """A new, empty mailbox (``FileExistsError`` if the id is taken; ``StoreUnavailable`` when the
    data host cannot be reached)."""
    if settings.store_url is not None:
        from sealmail.store import remote

        url = None
        if settings.store_urls is not None:
            from sealmail.store.routing import choose_home

            url = settings.store_urls[choose_home(config, list(settings.store_urls))]
        remote.call_once(settings, "create_mailbox", mailbox_id, mailbox_key, url=url)
        return
    MailStore(settings.data_dir).create(mailbox_id, mailbox_key)
    if settings.store_host:
        config.set_mailbox_home(mailbox_id, settings.store_host)


def delete(config: ConfigStore, settings: Settings, mailbox_id: str) -> None:
    """A mailbox's files and spool removed, and its recorded home with them."""
    if settings.store_url is not None:
        from sealmail.store import remote

        url = None
        if settings.store_urls is not None:
            home = config.get_mailbox_home(mailbox_id)
            if home is not None and home.host not in settings.store_urls:
                raise StoreUnavailable(f"mailbox {mailbox_id} lives on data host {home.host!r}, which has no URL here")
            url = settings.store_urls[home.host] if home is not None else None
        remote.call_once(settings, "delete_mailbox", mailbox_id, url=url)
        return
    MailStore(settings.data_dir).delete(mailbox_id)
    if settings.store_host:
        config.remove_mailbox_home(mailbox_id)
