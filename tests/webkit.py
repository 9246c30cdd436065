"""Helpers for the web admin tests: a browser without JavaScript (cookies, forms with CSRF tokens)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx

BASIC = ("setup-user", "setup-password-123")
ADMIN = ("root@example.test", "correct horse battery")

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An httpx client that behaves like a browser without JavaScript: cookies, forms with their CSRF token."""

    login_path = "/admin/login"  # a page with a form, for a first CSRF token
    cookie = "__Host-sealmail"

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
                self.get(self.login_path)
            fields["csrf"] = self.csrf
        before = self.session_id()
        return self._note(before, self.client.post(path, data=fields, **kw))

    def session_id(self) -> str | None:
        return self.client.cookies.get(self.cookie)

    def close(self) -> None:
        self.client.close()


class AccountBrowser(Browser):
    """The same, in the users' self-service area (its own cookie and sign-in page)."""

    login_path = "/account/login"
    cookie = "__Host-sealmail-account"

    def sign_in(self, address: str, password: str, next: str = "/account/") -> httpx.Response:
        self.get("/account/login")
        return self.post("/account/login", {"address": address, "password": password, "next": next})


def create_admin(b: Browser) -> None:
    b.get("/setup")
    r = b.post("/setup", {"email": ADMIN[0], "password": ADMIN[1], "confirm": ADMIN[1]})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/setup/domain"
