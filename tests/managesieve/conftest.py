"""Fixtures for the ManageSieve tests: settings with test TLS certificates, an account, a running server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from linekit import dev_certificates, served_settings, serving, trusting
from managesievekit import Running
from pop3kit import Account, make_account


@pytest.fixture
def certs(tmp_path: Path):
    return dev_certificates(tmp_path)


@pytest.fixture
def client_context(certs) -> ssl.SSLContext:
    return trusting(certs)


@pytest.fixture
def sieve_settings(settings, certs):
    return served_settings(settings, certs, "managesieve_port")


@pytest.fixture
def account(sieve_settings) -> Account:
    return make_account(sieve_settings)


@pytest.fixture
def serve(sieve_settings):
    """Start servers with settings overrides: ``serve(managesieve_login_timeout=1)``; all stop at teardown."""
    with serving(Running, sieve_settings) as serve:
        yield serve


@pytest.fixture
def server(serve) -> Running:
    return serve()
