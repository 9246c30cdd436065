"""The config store: one interface (``ConfigStore``), an SQLite and a MongoDB backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.config.base import ConfigStore

if TYPE_CHECKING:
    from sealmail.settings import Settings

__all__ = ["ConfigStore", "open_store"]


def open_store(settings: Settings) -> ConfigStore:
    """The backend the settings choose: the embedded SQLite file by default, MongoDB for many hosts."""
    if settings.config_backend == "mongodb":
        from sealmail.config.mongodb import MongoConfigStore

        assert settings.mongodb_url is not None  # enforced by Settings
        return MongoConfigStore(settings.mongodb_url.get_secret_value(), settings.mongodb_database)
    from sealmail.config.sqlite import SQLiteConfigStore

    return SQLiteConfigStore(settings.config_db_path)
