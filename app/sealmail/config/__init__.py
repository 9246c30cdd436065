"""The config store: one interface (``ConfigStore``), an SQLite and a MongoDB backend, and the data
host's config store reached over the store channel (``store``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.config.base import ConfigStore

if TYPE_CHECKING:
    from sealmail.settings import Settings

__all__ = ["ConfigStore", "open_store"]


def open_store(settings: Settings) -> ConfigStore:
    """The backend the settings choose: the embedded SQLite file by default; for many hosts MongoDB,
    or (``store``) the data host's config store over the store channel."""
    if settings.config_backend == "store":
        from sealmail.config.remote import RemoteConfigStore

        return RemoteConfigStore.from_settings(settings)
    if settings.config_backend == "mongodb":
        from sealmail.config.mongodb import MongoConfigStore

        assert settings.mongodb_url is not None  # enforced by Settings
        return MongoConfigStore(settings.mongodb_url.get_secret_value(), settings.mongodb_database)
    from sealmail.config.sqlite import SQLiteConfigStore

    return SQLiteConfigStore(settings.config_db_path)
