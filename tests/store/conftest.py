"""Store fixtures: an alias with a mailbox in a temporary data directory."""

from __future__ import annotations

import os

import pytest
from storekit import StoreProcess, store_certs

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.store.mailbox import Mailbox

from support import free_port


@pytest.fixture
def config(settings):
    store = SQLiteConfigStore(settings.config_db_path)
    yield store
    store.close()


@pytest.fixture
def account(config, settings):
    """(address, password) of an alias with an encrypted mailbox."""
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "rémi@example.test")
    password = credentials.set_password(config, settings, "rémi@example.test")
    return "rémi@example.test", password


@pytest.fixture
def mailbox(tmp_path):
    box = Mailbox("f" * 24, tmp_path / "box.sqlite", os.urandom(32))
    yield box
    box.close()


# ---- a data host: the store component in its own process, reached with certificates of its CA ------
@pytest.fixture
def certs(tmp_path):
    return store_certs(tmp_path / "tls")


@pytest.fixture
def data_host(sealmail_bin, settings, certs, redis_url, tmp_path):
    proc = StoreProcess(sealmail_bin, settings.data_dir, certs, free_port(), tmp_path / "store.log", redis_url)
    proc.start()
    yield proc
    proc.stop()
