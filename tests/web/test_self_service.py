"""The users' self-service area (issue 22) over real HTTPS, beside a real IMAP server: signing in
with an IDN/EAI address, sessions apart from the admin's, CSRF, the shared lockout, two-factor
authentication (RFC 6238), the password and the recovery key, quota usage, and the API tokens a
user makes for their own address."""

from __future__ import annotations

import imaplib
import re
import time
from datetime import UTC, datetime

import pyotp
import pytest

from sealmail.errors import InvalidInput
from sealmail.services import aliases, credentials, selfservice
from sealmail.services.credentials import AuthenticationFailed
from sealmail.web.sessions import ACCOUNT_COOKIE, COOKIE

from selfkit import ADDRESS, OTHER, append_all, imap_client, make_alias, messages
from support import ComponentThread, wait_for
from webkit import AccountBrowser, create_admin


@pytest.fixture
def password(store, web_settings) -> str:
    return make_alias(store, web_settings)


@pytest.fixture
def imap(web_settings):
    running = ComponentThread("imap", web_settings.model_copy(update={"imaps_port": 0, "imap_port": 0}))
    yield running
    running.stop()


@pytest.fixture
def me(web, certs):
    """A browser in the self-service area (no basic-auth pair: the area does not need one)."""
    opened: list[AccountBrowser] = []

    def make() -> AccountBrowser:
        b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def _totp_on(b: AccountBrowser, password: str) -> str:
    assert b.post("/account/totp").headers["location"] == "/account/totp"
    page = b.get("/account/totp").text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert "otpauth://totp/" in page
    assert "<svg" in page  # the QR code
    r = b.post("/account/totp/confirm", {"code": pyotp.TOTP(secret).now(), "password": password})
    assert r.status_code == 303, r.text
    return secret


# ---- signing in -------------------------------------------------------------------------------------
def test_sign_in_with_an_idn_and_utf8_address(me, password) -> None:
    b = me()
    r = b.get("/account/")
    assert r.status_code == 303
    assert r.headers["location"] == "/account/login?next=/account/"
    r = b.sign_in(ADDRESS, password)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/account/"
    page = b.get("/account/")
    assert page.status_code == 200
    assert ADDRESS in page.text
    assert b.session_id() is not None
    # The A-label form of the domain is the same address.
    other = me()
    assert other.sign_in("rémi@xn--universitxyz-jeb.fr", password).headers["location"] == "/account/"


def test_wrong_password_and_unknown_address_get_the_same_answer(me, password) -> None:
    b = me()
    wrong = b.sign_in(ADDRESS, "not the password")
    unknown = b.sign_in("nobody@universitéxyz.fr", password)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong address or password." in wrong.text
    assert "Wrong address or password." in unknown.text
    assert b.get("/account/").status_code == 303


def test_an_alias_without_a_mailbox_cannot_sign_in(me, password, store, web_settings) -> None:
    aliases.add_alias(store, "fwd@universitéxyz.fr", recipients=["x@example.org"], storage=False)
    forwarded = credentials.set_password(store, web_settings, "fwd@universitéxyz.fr")
    assert me().sign_in("fwd@universitéxyz.fr", forwarded).status_code == 401


def test_the_lockout_is_the_one_imap_logins_share(me, password, imap, certs) -> None:
    """Failures in the web area count on the address as IMAP's do (net.limits: one set of counters)."""
    b = me()
    for _ in range(5):
        assert b.sign_in(ADDRESS, "wrong password!").status_code == 401
    r = b.sign_in(ADDRESS, password)  # the right password, but the address is locked for now
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        imap_client(imap.ports["imaps"], certs.ca_cert, ADDRESS, password)


def test_sign_out_ends_the_session(me, password) -> None:
    b = me()
    b.sign_in(ADDRESS, password)
    sid = b.session_id()
    assert b.post("/account/logout").headers["location"] == "/account/login"
    replay = me()
    replay.client.cookies.set(ACCOUNT_COOKIE, sid, domain="127.0.0.1")
    assert replay.get("/account/").status_code == 303


# ---- apart from the admin's pages ---------------------------------------------------------------------
def test_user_and_admin_sessions_never_reach_each_other(me, browser, password) -> None:
    admin = browser()
    create_admin(admin)  # signed in as the admin
    assert admin.get("/admin").status_code == 200
    assert admin.get("/account/").headers["location"].startswith("/account/login")
    user = me()
    user.sign_in(ADDRESS, password)
    assert user.get("/account/").status_code == 200
    r = user.get("/admin")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/admin/login")
    # Each cookie is read by its own area only: the user's id under the admin's name opens nothing...
    thief = me()
    thief.client.cookies.set(COOKIE, user.session_id(), domain="127.0.0.1")
    assert thief.get("/admin").headers["location"].startswith("/admin/login")
    # ...and the admin's under the user's name neither.
    thief = me()
    thief.client.cookies.set(ACCOUNT_COOKIE, admin.session_id(), domain="127.0.0.1")
    assert thief.get("/account/").headers["location"].startswith("/account/login")
    # An admin page's CSRF token is no good for the user's forms (each area's session has its own).
    r = user.post("/account/tokens", {"name": "x", "csrf": admin.csrf})
    assert r.status_code == 403
    assert user.client.cookies.get(COOKIE) is None  # the area never set the admin's cookie


def test_the_area_needs_no_basic_auth_pair_before_the_first_admin(me, password) -> None:
    """Aliases made with the CLI sign in before anyone made an admin account; the admin pages stay gated."""
    b = me()
    assert b.get("/account/login").status_code == 200
    assert b.sign_in(ADDRESS, password).status_code == 303
    assert b.get("/admin/login").status_code == 401


def test_every_form_of_the_area_needs_its_csrf_token(me, password) -> None:
    from sealmail.web import selfservice as area

    b = me()
    b.sign_in(ADDRESS, password)
    posts = [
        r.path.replace("{token_id}", "x")
        for module in area.MODULES
        for r in module.router.routes
        if "POST" in getattr(r, "methods", set())
    ]
    assert len(posts) >= 10
    for path in posts:
        assert b.post(path, {"x": "1"}, csrf=False).status_code == 403, path
        r = b.client.post(path, data={"csrf": "forged"})
        assert r.status_code == 403, path
    assert b.get("/account/").status_code == 200  # still signed in: nothing happened


def test_session_cookie_flags(me, password) -> None:
    b = me()
    r = b.sign_in(ADDRESS, password)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{ACCOUNT_COOKIE}=")
    for flag in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie
    assert "Domain=" not in cookie
    assert "Max-Age" not in cookie


# ---- two-factor ------------------------------------------------------------------------------------------
def test_rfc6238_totp_on_sign_in_single_use_codes_and_off(me, password, store, web_settings) -> None:
    b = me()
    b.sign_in(ADDRESS, password)
    b.post("/account/totp")
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', b.get("/account/totp").text).group(1).replace(" ", "")
    r = b.post("/account/totp/confirm", {"code": "000000", "password": password})
    assert r.status_code == 422
    assert "not the current one" in r.text
    r = b.post("/account/totp/confirm", {"code": pyotp.TOTP(secret).now(), "password": "wrong password"})
    assert r.status_code == 401
    assert b.get("/account/security").text.count("<strong>Off.</strong>") == 1
    r = b.post("/account/totp/confirm", {"code": pyotp.TOTP(secret).now(), "password": password})
    assert r.status_code == 303
    assert "<strong>On.</strong>" in b.get("/account/security").text
    # Kept sealed with a key from the mailbox key: not the secret, in no form, in the config store.
    alias = aliases.get_alias(store, ADDRESS)
    sealed = store.get_credential(alias.id).totp_secret
    assert sealed is not None
    assert secret.encode() not in sealed
    assert secret.encode() not in web_settings.config_db_path.read_bytes()
    assert "otpauth" not in web_settings.config_db_path.read_bytes().decode("latin-1")

    other = me()
    r = other.sign_in(ADDRESS, password)
    assert r.headers["location"] == "/account/login/2fa"
    assert other.get("/account/").status_code == 303  # not in yet
    assert other.post("/account/login/2fa", {"code": "123456"}).status_code == 401
    code = pyotp.TOTP(secret).now()
    r = other.post("/account/login/2fa", {"code": code})
    assert r.headers["location"] == "/account/"
    assert other.get("/account/").status_code == 200
    # RFC 6238 §5.2: the same code does not sign in a second time.
    third = me()
    third.sign_in(ADDRESS, password)
    assert third.post("/account/login/2fa", {"code": code}).status_code == 401

    r = other.post("/account/totp/disable", {"code": "000000", "password": password})
    assert r.status_code == 422
    r = other.post("/account/totp/disable", {"code": code, "password": password})
    assert r.status_code == 422  # the code that signed in is spent
    next_step = pyotp.TOTP(secret).at(time.time() + 30)  # one step of drift is accepted
    r = other.post("/account/totp/disable", {"code": next_step, "password": password})
    assert r.status_code == 303
    assert store.get_credential(alias.id).totp_secret is None
    assert me().sign_in(ADDRESS, password).headers["location"] == "/account/"


def test_second_factor_failures_lock_the_address_out(me, password) -> None:
    b = me()
    b.sign_in(ADDRESS, password)
    _totp_on(b, password)
    other = me()
    other.sign_in(ADDRESS, password)
    for _ in range(5):
        assert other.post("/account/login/2fa", {"code": "000000"}).status_code == 401
    assert other.post("/account/login/2fa", {"code": "000000"}).status_code == 429


def test_a_mailbox_reset_drops_the_second_factor(me, password, store, web_settings) -> None:
    """An administrator's reset (no old password, no recovery key) makes a new mailbox key: the old
    sealed secret could not be opened, so it goes, and the user signs in with the new password alone."""
    b = me()
    b.sign_in(ADDRESS, password)
    _totp_on(b, password)
    new = credentials.set_password(store, web_settings, ADDRESS, reset_mailbox=True)
    assert store.get_credential(aliases.get_alias(store, ADDRESS).id).totp_secret is None
    assert me().sign_in(ADDRESS, new).headers["location"] == "/account/"


# ---- password, recovery key, quota -----------------------------------------------------------------------
def test_change_password_rewraps_the_keys_the_old_one_stops_everywhere(
    me, password, imap, certs, store, web_settings
) -> None:
    port = imap.ports["imaps"]
    client = imap_client(port, certs.ca_cert, ADDRESS, password)
    append_all(client, messages()[:1])
    open_before = imap_client(port, certs.ca_cert, ADDRESS, password)
    open_before.select("INBOX")
    b = me()
    b.sign_in(ADDRESS, password)
    elsewhere = me()
    elsewhere.sign_in(ADDRESS, password)
    mailbox_id = store.get_credential(aliases.get_alias(store, ADDRESS).id).mailbox_id
    new = "a brand new passphrase"

    r = b.post("/account/password", {"current": "wrong one", "password": new, "confirm": new})
    assert r.status_code == 401
    assert "The current password is wrong." in r.text
    r = b.post("/account/password", {"current": password, "password": "short", "confirm": "short"})
    assert r.status_code == 422
    assert "at least 12 characters" in r.text
    r = b.post("/account/password", {"current": password, "password": new, "confirm": new + "x"})
    assert r.status_code == 422
    assert "differ" in r.text
    r = b.post("/account/password", {"current": password, "password": new, "confirm": new})
    assert r.status_code == 303, r.text
    assert b.get("/account/security").status_code == 200  # this session goes on
    assert elsewhere.get("/account/").status_code == 303  # the other one ends

    # The old password stops working over IMAP; the new one works at once and reads the same mail.
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_client(port, certs.ca_cert, ADDRESS, password)
    fresh = imap_client(port, certs.ca_cert, ADDRESS, new)
    fresh.select("INBOX")
    _, data = fresh.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == messages()[0][1]
    fresh.logout()
    # An IMAP session signed in with the old password is ended (on every process: services.revocation).
    wait_for(lambda: _is_closed(open_before), timeout=10, what="the old session's end")
    open_before.shutdown()
    # The mailbox was not re-encrypted or replaced: same file, its key wrapped again.
    assert store.get_credential(aliases.get_alias(store, ADDRESS).id).mailbox_id == mailbox_id
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(store, web_settings, ADDRESS, password)
    client.shutdown()


def _is_closed(client: imaplib.IMAP4_SSL) -> bool:
    try:
        client.noop()
    except (imaplib.IMAP4.abort, OSError):
        return True
    return False


def test_recovery_key_is_shown_once_and_replaces_the_old_one(me, password, store, web_settings) -> None:
    b = me()
    b.sign_in(ADDRESS, password)
    assert "You have no recovery key" in b.get("/account/security").text
    r = b.post("/account/recovery-key", {"password": "wrong password"})
    assert r.status_code == 401
    r = b.post("/account/recovery-key", {"password": password})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    first = re.search(r'id="recovery-key">(smrk1-[a-z2-7]+)<', r.text).group(1)
    assert "You have a recovery key" in b.get("/account/security").text
    r = b.post("/account/recovery-key", {"password": password})
    second = re.search(r'id="recovery-key">(smrk1-[a-z2-7]+)<', r.text).group(1)
    assert "the old recovery key no longer works" in r.text
    assert first != second
    with pytest.raises(AuthenticationFailed):
        credentials.set_password(store, web_settings, ADDRESS, recovery_key=first)
    kept = credentials.set_password(store, web_settings, ADDRESS, recovery_key=second)
    assert credentials.unlock(store, web_settings, ADDRESS, kept).alias.name == "rémi"


def test_quota_usage_shows_what_the_mx_counts(me, password, store, web_settings, web) -> None:
    alias = aliases.get_alias(store, ADDRESS)
    aliases.update_alias(store, ADDRESS, quota=10 * 1024 * 1024)
    store.record_usage(alias.id, 1024 * 1024)
    credential = store.get_credential(alias.id)
    web.call(_deliver(web, credential, b"Subject: waiting\r\n\r\n" + b"x" * 300_000))
    b = me()
    b.sign_in(ADDRESS, password)
    page = b.get("/account/").text
    usage = selfservice.usage(store, web_settings, web.component.ctx.mailstore, selfservice.member(store, alias.id))
    assert usage.limit == 10 * 1024 * 1024
    assert usage.stored == 1024 * 1024
    assert usage.waiting > 300_000
    assert f'<meter id="usage" min="0" max="10485760" value="{usage.used}">' in page
    assert "of 10.0 MiB used" in page or "of 10 MiB used" in page
    assert "new mail that moves into your mailbox" in page


async def _deliver(web, credential, raw: bytes) -> None:
    await web.component.ctx.mailstore.deliver_async(
        credential.mailbox_id, credential.public_key, raw, datetime.now(UTC)
    )


# ---- the user's own API tokens -------------------------------------------------------------------------
def test_tokens_are_made_shown_once_listed_and_revoked(me, password, store, web_settings) -> None:
    b = me()
    b.sign_in(ADDRESS, password)
    r = b.post("/account/tokens", {"name": ""})
    assert r.status_code == 422
    r = b.post("/account/tokens", {"name": "backup script"})
    assert r.status_code == 200
    secret = re.search(r'id="new-token">(sm_[\w-]+)<', r.text).group(1)
    listing = b.get("/account/tokens").text
    assert "backup script" in listing
    assert secret not in listing
    alias = aliases.get_alias(store, ADDRESS)
    (token,) = store.list_alias_tokens(alias.id)
    assert token.scopes == ["account"]
    # Another alias's token is not this user's to revoke.
    make_alias(store, web_settings, OTHER)
    theirs = selfservice.create_token(
        store, selfservice.member(store, aliases.get_alias(store, OTHER).id), "theirs", _actor()
    )[0]
    assert b.post(f"/account/tokens/{theirs.id}/revoke").status_code == 303
    assert store.get_token(theirs.id).revoked_at is None
    assert b.post(f"/account/tokens/{token.id}/revoke").status_code == 303
    assert store.get_token(token.id).revoked_at is not None
    member = selfservice.member(store, alias.id)
    for i in range(selfservice.MAX_TOKENS):
        selfservice.create_token(store, member, f"t{i}", _actor())
    with pytest.raises(InvalidInput, match="at most 20 tokens"):
        selfservice.create_token(store, member, "one too many", _actor())


def _actor():
    from sealmail.services.eventlog import Actor

    return Actor("test", "test", "127.0.0.1")


def test_audit_entries_name_the_user_and_never_a_secret(me, password, store) -> None:
    from sealmail.config.models import LogQuery

    b = me()
    b.sign_in(ADDRESS, password)
    new = "another long password"
    b.post("/account/password", {"current": password, "password": new, "confirm": new})
    b.post("/account/recovery-key", {"password": new})
    b.post("/account/tokens", {"name": "phone"})
    entries = store.query_logs(LogQuery(kind="audit", limit=50)).entries
    actions = {e.status for e in entries}
    assert {"account.password", "account.recovery-key", "account.token-create"} <= actions
    for e in entries:
        assert e.address == ADDRESS
        assert f"alias {ADDRESS}" in e.detail
        assert password not in e.detail
        assert new not in e.detail


def test_admin_pages_still_list_and_revoke_a_users_token(me, browser, password, store) -> None:
    admin = browser()
    create_admin(admin)
    b = me()
    b.sign_in(ADDRESS, password)
    b.post("/account/tokens", {"name": "laptop"})
    (token,) = store.list_alias_tokens(aliases.get_alias(store, ADDRESS).id)
    assert "laptop" in admin.get("/admin/tokens").text
    assert admin.post(f"/admin/tokens/{token.id}/revoke").status_code == 303
    assert store.get_token(token.id).revoked_at is not None
