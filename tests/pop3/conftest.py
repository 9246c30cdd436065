"""Fixtures for the POP3 tests: settings with test TLS certificates, an account, a running server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr
from storekit import StoreThread, remote_mode

from linekit import dev_certificates, served_settings, serving, trusting
from pop3kit import Account, Running, make_account


@pytest.fixture
def certs(tmp_path: Path):
    return dev_certificates(tmp_path)


@pytest.fixture
def client_context(certs) -> ssl.SSLContext:
    return trusting(certs)


@pytest.fixture
def pop3_settings(settings, certs):
    return served_settings(settings, certs, "pop3s_port", "pop3_port")


@pytest.fixture
def account(pop3_settings) -> Account:
    return make_account(pop3_settings)


@pytest.fixture
def data_host(pop3_settings, tmp_path, request):
    """SEALMAIL_TEST_STORE=remote: the store component every POP3 server below reaches the mailboxes
    through (the same data directory: the tests' helpers still seal mail into its spools)."""
    if not remote_mode():
        yield None
        return
    # Its change events on a real Redis, as in production (tests that give the POP3 server Redis
    # listen there for the store's events).
    redis_url = request.getfixturevalue("redis_url")
    store = StoreThread(pop3_settings.model_copy(update={"redis_url": SecretStr(redis_url)}), tmp_path / "tls")
    yield store
    store.stop()


@pytest.fixture
def serve(pop3_settings, data_host):
    """Start servers with settings overrides: ``serve(pop3_login_delay=60)``; all stop at teardown."""

    def start(settings) -> Running:
        return Running(data_host.client_settings(settings) if data_host is not None else settings)

    with serving(start, pop3_settings) as serve:
        yield serve


@pytest.fixture
def pop3(serve) -> Running:
    return serve()
