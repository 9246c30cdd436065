"""Fixtures for the ManageSieve tests: settings with test TLS certificates, an account, a running server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from sealmail.tls.devca import ensure_dev_certificates

from managesievekit import Running
from pop3kit import Account, make_account


@pytest.fixture
def certs(tmp_path: Path):
    return ensure_dev_certificates(tmp_path / "tls")


@pytest.fixture
def client_context(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_cert))


@pytest.fixture
def sieve_settings(settings, certs):
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "managesieve_port": 0,
            "bind_addresses": ["127.0.0.1"],
        }
    )


@pytest.fixture
def account(sieve_settings) -> Account:
    return make_account(sieve_settings)


@pytest.fixture
def serve(sieve_settings):
    """Start servers with settings overrides: ``serve(managesieve_login_timeout=1)``; all stop at teardown."""
    started: list[Running] = []

    def start(**overrides) -> Running:
        running = Running(sieve_settings.model_copy(update=overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(serve) -> Running:
    return serve()
