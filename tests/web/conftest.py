"""Fixtures for the web admin and API tests: both components running on test certificates, real HTTPS."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.tls.devca import ensure_dev_certificates

from support import ComponentThread

BASIC = ("setup-user", "setup-password-123")
ADMIN = ("root@example.test", "correct horse battery")


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
            "api_port": 0,
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


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An httpx client that behaves like a browser without JavaScript: cookies, forms with their CSRF token."""

    def __init__(self, base: str, ca: Path, auth: tuple[str, str] | None = BASIC) -> None:
        self.client = httpx.Client(
            base_url=base,
            verify=ssl.create_default_context(cafile=str(ca)),
            auth=auth,
            follow_redirects=False,
            timeout=30,
        )
        self.csrf: str | None = None

    def _note(self, before: str | None, response: httpx.Response) -> httpx.Response:
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        elif self.session_id() != before:
            self.csrf = None  # a new session (sign-in rotates it) has a new token: fetch a form first
        return response

    def get(self, path: str, **kw) -> httpx.Response:
        before = self.session_id()
        return self._note(before, self.client.get(path, **kw))

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw) -> httpx.Response:
        fields = dict(data or {})
        if csrf and "csrf" not in fields:
            if self.csrf is None:
                self.get("/admin/login")
            fields["csrf"] = self.csrf
        before = self.session_id()
        return self._note(before, self.client.post(path, data=fields, **kw))

    def session_id(self) -> str | None:
        return self.client.cookies.get("__Host-sealmail")

    def close(self) -> None:
        self.client.close()


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


def create_admin(b: Browser) -> None:
    b.get("/setup")
    r = b.post("/setup", {"email": ADMIN[0], "password": ADMIN[1], "confirm": ADMIN[1]})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/setup/domain"


@pytest.fixture
def signed_in(browser):
    """A browser whose admin account was just made through the wizard (signed in by it)."""
    b = browser()
    create_admin(b)
    return b
