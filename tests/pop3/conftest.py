"""Fixtures for the POP3 tests: settings with test TLS certificates, an account, a running server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr
from storekit import StoreThread, remote_mode

from sealmail.tls.devca import ensure_dev_certificates

from pop3kit import Account, Running, make_account


@pytest.fixture
def certs(tmp_path: Path):
    return ensure_dev_certificates(tmp_path / "tls")


@pytest.fixture
def client_context(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_cert))


@pytest.fixture
def pop3_settings(settings, certs):
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "pop3s_port": 0,
            "pop3_port": 0,
            "bind_addresses": ["127.0.0.1"],
        }
    )


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
    started: list[Running] = []

    def start(**overrides) -> Running:
        settings = pop3_settings.model_copy(update=overrides)
        running = Running(data_host.client_settings(settings) if data_host is not None else settings)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def pop3(serve) -> Running:
    return serve()
