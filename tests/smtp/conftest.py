"""SMTP fixtures reuse the store's config fixture."""

from __future__ import annotations

import pytest

from sealmail.config.sqlite import SQLiteConfigStore


@pytest.fixture
def config(settings):
    store = SQLiteConfigStore(settings.config_db_path)
    yield store
    store.close()
