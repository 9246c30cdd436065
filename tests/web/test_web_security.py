"""The web admin's defences over real HTTPS: the first-run gate, CSRF, sessions, lockout, two-factor."""

from __future__ import annotations

import logging

import pyotp
import pytest

from sealmail.config.models import LogQuery
from sealmail.services import admins
from sealmail.web.sessions import COOKIE

from webkit import ADMIN, BASIC, create_admin


def _sign_in(b, email: str = ADMIN[0], password: str = ADMIN[1]):
    b.get("/admin/login")
    return b.post("/admin/login", {"email": email, "password": password, "next": "/admin"})


# ---- first-run gate ---------------------------------------------------------------------------------
def test_basic_auth_gate_stands_in_front_of_everything_until_an_admin_exists(browser) -> None:
    anonymous = browser(auth=None)
    for path in ("/", "/setup", "/admin", "/admin/login", "/static/app.css?x", "/nowhere"):
        r = anonymous.get(path) if not path.startswith("/static") else anonymous.get("/admin/domains")
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith('Basic realm="Sealmail setup"')
    assert browser(auth=(BASIC[0], "wrong")).get("/setup").status_code == 401

    b = browser()
    assert b.get("/").headers["location"] == "/setup"
    create_admin(b)
    # With an admin, the gate is gone: the sign-in page is what protects the admin now.
    after = browser(auth=None)
    assert after.get("/admin").status_code == 303
    assert after.get("/admin/login").status_code == 200
    assert after.get("/setup").headers["location"] == "/admin/login"


def test_basic_auth_failures_lock_the_address_out(browser) -> None:
    wrong = browser(auth=(BASIC[0], "guess"))
    for _ in range(10):
        assert wrong.get("/setup").status_code == 401
    assert browser().get("/setup").status_code == 429  # even the right password, from that address


def test_first_admin_cannot_be_made_twice(signed_in, browser) -> None:
    other = browser()
    r = other.get("/setup")
    assert r.headers["location"] == "/admin/login"
    r = other.post("/setup", {"email": "evil@example.test", "password": "x" * 20, "confirm": "x" * 20})
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/login"


def test_setup_validates_the_admin_form(browser) -> None:
    b = browser()
    b.get("/setup")
    r = b.post("/setup", {"email": "not an address", "password": "long enough pw", "confirm": "long enough pw"})
    assert r.status_code == 422
    assert "is not an email address" in r.text
    r = b.post("/setup", {"email": ADMIN[0], "password": "short", "confirm": "short"})
    assert "at least 12 characters" in r.text
    r = b.post("/setup", {"email": ADMIN[0], "password": "long enough pw", "confirm": "long enough pX"})
    assert "the two passwords differ" in r.text


# ---- CSRF ---------------------------------------------------------------------------------------------
def _post_routes() -> list[str]:
    from sealmail.web import views

    paths = []
    for route in (route for page in views.PAGES for route in page.router.routes):
        if "POST" in getattr(route, "methods", set()):
            paths.append(
                route.path.replace("{name}", "example.test").replace("{alias_id}", "x").replace("{token_id}", "x")
            )
    return paths


def test_every_form_needs_the_session_csrf_token(web, signed_in, store) -> None:
    paths = _post_routes()
    assert len(paths) >= 15
    for path in paths:
        missing = signed_in.post(path, {"name": "a.test"}, csrf=False)
        assert missing.status_code == 403, path
        assert "CSRF" in missing.text
        forged = signed_in.post(path, {"name": "a.test", "csrf": "x" * 43})
        assert forged.status_code == 403, path
    assert [d.name for d in store.list_domains()] == []  # nothing got through


def test_a_token_from_another_session_does_not_work(signed_in, browser) -> None:
    other = browser(auth=None)
    other.get("/admin/login")
    assert other.csrf != signed_in.csrf
    r = signed_in.post("/admin/domains", {"name": "a.test", "csrf": other.csrf})
    assert r.status_code == 403


def test_cross_site_origin_is_refused_even_with_a_token(signed_in) -> None:
    r = signed_in.post("/admin/domains", {"name": "a.test"}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    r = signed_in.post(
        "/admin/domains", {"name": "a.test"}, headers={"origin": str(signed_in.client.base_url).rstrip("/")}
    )
    assert r.status_code == 303


def test_json_posts_are_not_forms(signed_in) -> None:
    r = signed_in.client.post("/admin/domains", json={"name": "a.test", "csrf": signed_in.csrf})
    assert r.status_code == 403


# ---- sessions -----------------------------------------------------------------------------------------
def test_session_cookie_flags(browser) -> None:
    b = browser()
    r = b.get("/setup")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain=" not in cookie
    assert "Max-Age" not in cookie
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_sign_in_replaces_the_session_id(signed_in, browser) -> None:
    """Session fixation: an id known before sign-in is worthless after it."""
    b = browser(auth=None)
    b.get("/admin/login")
    planted = b.session_id()
    assert planted
    r = _sign_in(b)
    assert r.status_code == 303
    assert r.headers["location"] == "/admin"
    fresh = b.session_id()
    assert fresh
    assert fresh != planted
    assert b.get("/admin").status_code == 200

    attacker = browser(auth=None)
    attacker.client.cookies.set(COOKIE, planted, domain="127.0.0.1")
    assert attacker.get("/admin").status_code == 303  # to the sign-in page


def test_sign_out_ends_the_session_on_the_server(signed_in, browser) -> None:
    sid = signed_in.session_id()
    assert signed_in.get("/admin").status_code == 200
    r = signed_in.post("/admin/logout")
    assert r.status_code == 303
    replay = browser(auth=None)
    replay.client.cookies.set(COOKIE, sid, domain="127.0.0.1")
    assert replay.get("/admin").status_code == 303


def test_a_password_change_ends_the_accounts_other_sessions(signed_in, browser, store) -> None:
    """Issue 16: a stolen password (or a session opened with it) stops working once the owner changes it.

    Every other session of that admin, on any web host (sessions live in Redis), goes to the
    sign-in page on its next request; the session that made the change goes on."""
    thief = browser(auth=None)
    assert _sign_in(thief).status_code == 303
    assert thief.get("/admin").status_code == 200
    owner = signed_in
    owner.get("/admin/account")
    new = "an entirely new passphrase"
    r = owner.post("/admin/account/password", {"current": ADMIN[1], "password": new, "confirm": new})
    assert r.status_code == 303
    assert owner.get("/admin").status_code == 200
    r = thief.get("/admin")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/admin/login")
    assert _sign_in(thief).status_code == 401  # the old password no longer signs in either
    store.remove_admin(store.find_admin(ADMIN[0]).id)
    assert owner.get("/admin").status_code == 303  # a removed account's sessions end too


def test_next_parameter_stays_on_this_site(signed_in, browser) -> None:
    b = browser(auth=None)
    b.get("/admin/login")
    r = b.post("/admin/login", {"email": ADMIN[0], "password": ADMIN[1], "next": "//evil.example/x"})
    assert r.headers["location"] == "/admin"


# ---- lockout ------------------------------------------------------------------------------------------
def test_account_lockout_after_failed_sign_ins(signed_in, browser) -> None:
    b = browser(auth=None)
    for _ in range(5):
        assert _sign_in(b, password="wrong password!").status_code == 401
    r = _sign_in(b)  # the right password, but the account is locked for now
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text


def test_ip_lockout_across_accounts(signed_in, browser) -> None:
    b = browser(auth=None)
    for i in range(10):
        assert _sign_in(b, email=f"nobody{i}@example.test", password="wrong password!").status_code == 401
    assert _sign_in(b).status_code == 429


# ---- two-factor ---------------------------------------------------------------------------------------
def _enable_totp(b) -> tuple[str, list[str]]:
    r = b.post("/admin/account/totp")
    assert r.headers["location"] == "/admin/account/totp"
    page = b.get("/admin/account/totp").text
    import re

    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    r = b.post("/admin/account/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    codes = re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", r.text)
    assert len(codes) == admins.RECOVERY_CODES
    return secret, codes


def test_totp_sign_in_with_single_use_codes_and_recovery_codes(signed_in, browser, store) -> None:
    secret, codes = _enable_totp(signed_in)
    assert store.find_admin(ADMIN[0]).totp_secret == secret
    assert codes[0] not in str(store.find_admin(ADMIN[0]).recovery_codes)  # only digests are kept

    b = browser(auth=None)
    r = _sign_in(b)
    assert r.headers["location"] == "/admin/login/2fa"
    assert b.get("/admin").status_code == 303  # password alone is not enough
    b.get("/admin/login/2fa")
    assert b.post("/admin/login/2fa", {"code": "000000"}).status_code == 401
    code = pyotp.TOTP(secret).now()
    assert b.post("/admin/login/2fa", {"code": code}).headers["location"] == "/admin"
    assert b.get("/admin").status_code == 200

    replay = browser(auth=None)
    _sign_in(replay)
    replay.get("/admin/login/2fa")
    assert replay.post("/admin/login/2fa", {"code": code}).status_code == 401  # RFC 6238 §5.2: once

    recovery = browser(auth=None)
    _sign_in(recovery)
    recovery.get("/admin/login/2fa")
    assert recovery.post("/admin/login/2fa", {"code": codes[0]}).status_code == 303
    assert "9 are left" in recovery.get("/admin").text
    again = browser(auth=None)
    _sign_in(again)
    again.get("/admin/login/2fa")
    assert again.post("/admin/login/2fa", {"code": codes[0]}).status_code == 401


def test_a_recovery_code_spent_by_concurrent_sign_ins_works_once(signed_in, browser, monkeypatch) -> None:
    """Issue 16: recovery codes are single-use (as TOTP codes, RFC 6238 §5.2) even when two requests
    present the same code at the same moment: exactly one sign-in succeeds.

    A config store that answers slowly (MongoDB across hosts) is what makes the race easy to hit;
    reading an admin account is slowed down here so every request has read before any has written."""
    import threading
    import time

    from sealmail.config.base import ConfigStore

    _, codes = _enable_totp(signed_in)
    tries = [browser(auth=None) for _ in range(5)]  # the account's limit of attempts in flight
    for b in tries:
        assert _sign_in(b).headers["location"] == "/admin/login/2fa"
        b.get("/admin/login/2fa")
    read = ConfigStore.get_admin

    def slow_read(self, admin_id):
        found = read(self, admin_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(ConfigStore, "get_admin", slow_read)
    start = threading.Barrier(len(tries))
    statuses: list[int] = []

    def spend(b) -> None:
        start.wait()
        statuses.append(b.post("/admin/login/2fa", {"code": codes[0]}).status_code)

    threads = [threading.Thread(target=spend, args=(b,)) for b in tries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == len(tries)
    assert statuses.count(303) == 1, statuses
    monkeypatch.undo()
    assert sum(b.get("/admin").status_code == 200 for b in tries) == 1


def test_second_factor_failures_lock_out_too(signed_in, browser) -> None:
    _enable_totp(signed_in)
    b = browser(auth=None)
    _sign_in(b)
    b.get("/admin/login/2fa")
    for _ in range(5):
        assert b.post("/admin/login/2fa", {"code": "123456"}).status_code in (401, 429)
    assert b.post("/admin/login/2fa", {"code": "123456"}).status_code == 429


# ---- logs ---------------------------------------------------------------------------------------------
def test_no_secret_reaches_the_log(signed_in, store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    signed_in.get("/admin/domains")
    signed_in.post("/admin/domains", {"name": "example.test"})
    signed_in.get("/admin/aliases/new")
    r = signed_in.post("/admin/aliases", {"address": "me@example.test", "storage": "on", "enabled": "on"})
    alias_id = r.headers["location"].rsplit("/", 1)[1]
    signed_in.get(f"/admin/aliases/{alias_id}")
    page = signed_in.post(f"/admin/aliases/{alias_id}/password").text
    import re

    password = re.search(r'id="new-password">([^<]+)<', page).group(1)
    signed_in.get("/admin/aliases?q=secret-query-text")
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("sealmail", "uvicorn")))
    assert "POST /admin/aliases" in text  # there is an access log...
    for secret in (password, ADMIN[1], BASIC[1], "secret-query-text", signed_in.csrf, signed_in.session_id()):
        assert secret not in text  # ...without bodies, query strings, cookies or tokens
    audit = store.query_logs(LogQuery(kind="audit")).entries
    assert {e.status for e in audit} >= {"admin.create", "domain.add", "alias.create", "alias.password"}
    assert all(password not in e.detail for e in audit)


def test_unset_gate_credentials_are_generated_kept_root_side_and_never_printed(web_settings, capfd, certs) -> None:
    """A generated secret is shown once where only the operator sees it: the 0600 file, whose path
    (not its content) goes to standard error — under systemd that is the journal, which more
    people read. Once the first admin exists, the file is deleted: the gate is over."""
    import json

    from support import ComponentThread
    from webkit import Browser

    settings = web_settings.model_copy(update={"auth_basic_username": None, "auth_basic_password": None})
    path = settings.data_dir / admins.BASIC_AUTH_FILE
    first = ComponentThread("web", settings)
    try:
        printed = capfd.readouterr().err
        kept = json.loads(path.read_text())
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert str(path) in printed  # where to find it...
        assert kept["password"] not in printed  # ...but never the password itself
        b = Browser(f"https://127.0.0.1:{first.ports['web']}", certs.ca_cert, (kept["username"], kept["password"]))
        assert b.get("/setup").status_code == 200
        create_admin(b)
        b.close()
        assert not path.exists()  # the first admin exists: the gate's secret is gone
    finally:
        first.stop()
    assert kept["password"] not in capfd.readouterr().err


def test_a_left_over_gate_file_is_deleted_when_the_web_starts_with_an_admin(web_settings, store) -> None:
    """An admin made while the file stayed (by an older version) also ends the gate: the next start
    deletes the generated pair."""
    from sealmail.config.models import AdminAccount

    from support import ComponentThread

    settings = web_settings.model_copy(update={"auth_basic_username": None, "auth_basic_password": None})
    admins.basic_auth_credentials(settings)
    path = settings.data_dir / admins.BASIC_AUTH_FILE
    assert path.exists()
    store.add_admin(AdminAccount(email=ADMIN[0], password_hash=admins.hash_password(settings, ADMIN[1])))
    assert path.exists()
    ComponentThread("web", settings).stop()
    assert not path.exists()
