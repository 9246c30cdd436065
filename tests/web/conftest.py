"""Fixtures for the web admin and API tests: both components running on test certificates, real HTTPS."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.tls.devca import ensure_dev_certificates

from support import ComponentThread
from webkit import BASIC, Browser, create_admin


@pytest.fixture
def certs(tmp_path: Path):
    return ensure_dev_certificates(tmp_path / "tls")


@pytest.fixture
def web_settings(settings, certs, redis_url):
    import redis

    # A database of its own, emptied per test: lockout counters and sessions never leak between tests.
    url = redis_url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(url).flushdb()
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "web_port": 0,
            "http_port": 0,  # plain HTTP off unless a test turns it on (test_discovery.py)
            "api_port": 0,
            "bind_addresses": ["127.0.0.1", "::1"],  # loopback only, both families
            "auth_basic_username": BASIC[0],
            "auth_basic_password": SecretStr(BASIC[1]),
            "redis_url": SecretStr(url),
            "domain": "example.test",
            "hostname": "mail.example.test",
        }
    )


@pytest.fixture
def store(web_settings):
    s = SQLiteConfigStore(web_settings.config_db_path)
    yield s
    s.close()


@pytest.fixture
def web(web_settings):
    running = ComponentThread("web", web_settings)
    yield running
    running.stop()


@pytest.fixture
def api(web_settings):
    running = ComponentThread("api", web_settings)
    yield running
    running.stop()


@pytest.fixture
def browser(web, certs):
    opened: list[Browser] = []

    def make(auth: tuple[str, str] | None = BASIC) -> Browser:
        b = Browser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, auth)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


@pytest.fixture
def signed_in(browser):
    """A browser whose admin account was just made through the wizard (signed in by it)."""
    b = browser()
    create_admin(b)
    return b
