"""Issue 22: a new password ends the API tokens a user made for their own address (``/v1/me``),
whoever sets it and however: the user in the account page or through ``/v1/me/password``, an
administrator in the web admin or the API with the current password, the recovery key or a mailbox
reset (the command line: tests/cli/test_cli.py). A user changes their password when they fear
someone else has it, and a token made by that someone must not outlive it. Administrators' tokens
and other addresses' tokens are not touched. Each revocation is one audit entry, without a secret."""

from __future__ import annotations

import ssl

import httpx
import pytest

from sealmail.config.models import LogQuery
from sealmail.services import aliases, credentials, selfservice, tokens

from selfkit import ACTOR, ADDRESS, OTHER, auth, make_alias, own_token
from webkit import AccountBrowser

NEW = "a fresh passphrase nobody else has"


@pytest.fixture
def client(api, certs):
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=60,
    ) as c:
        yield c


@pytest.fixture
def accounts(store, web_settings) -> dict[str, str]:
    return {address: make_alias(store, web_settings, address) for address in (ADDRESS, OTHER)}


@pytest.fixture
def held(store, accounts) -> dict[str, str]:
    """Secrets of live tokens: two the user of ADDRESS made, one of OTHER's user, one administrator's."""
    return {
        "mine": own_token(store, ADDRESS, "laptop"),
        "mine too": own_token(store, ADDRESS, "phone"),
        "theirs": own_token(store, OTHER, "theirs"),
        "admin": tokens.create_token(store, "ci", ["aliases:read"])[1],
    }


def assert_only_mine_revoked(client: httpx.Client, held: dict[str, str]) -> None:
    for name in ("mine", "mine too"):
        r = client.get("/v1/me", headers=auth(held[name]))
        assert r.status_code == 401, (name, r.text)
        assert r.json()["detail"] == "the token is unknown or revoked"
    assert client.get("/v1/me", headers=auth(held["theirs"])).json()["address"] == OTHER
    assert client.get("/v1/aliases", headers=auth(held["admin"])).status_code == 200


def assert_one_audit_entry(store, who: str, secrets: list[str]) -> None:
    """One entry for the revocation, naming the address and who changed the password, and no secret."""
    entries = store.query_logs(LogQuery(kind="audit", limit=100)).entries
    found = [e for e in entries if e.status == "alias.tokens-revoke"]
    assert len(found) == 1, [(e.status, e.detail) for e in entries]
    (entry,) = found
    assert entry.address == aliases.own_address(aliases.get_alias(store, ADDRESS))  # as the alias.* entries name it
    assert entry.detail.startswith(f"by {who}: ")
    assert "2 API tokens" in entry.detail
    assert "laptop" in entry.detail
    assert "phone" in entry.detail
    for e in entries:
        for secret in secrets:
            assert secret not in e.detail


def test_the_account_pages_password_change_revokes_the_users_own_tokens(
    web, certs, client, store, accounts, held
) -> None:
    for name in ("mine", "mine too", "theirs"):
        assert client.get("/v1/me", headers=auth(held[name])).status_code == 200
    b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        b.sign_in(ADDRESS, accounts[ADDRESS])
        security = b.get("/account/security").text
        assert "Your API tokens are revoked too" in security  # said before the user decides
        r = b.post("/account/password", {"current": accounts[ADDRESS], "password": NEW, "confirm": NEW})
        assert r.status_code == 303, r.text
        assert_only_mine_revoked(client, held)
        listing = b.get("/account/tokens").text
        assert listing.count("revoked ") == 2
        # A token made after the change works: the revocation is of the tokens there were.
        me = selfservice.member(store, aliases.get_alias(store, ADDRESS).id)
        after = selfservice.create_token(store, me, "after", ACTOR)[1]
        assert client.get("/v1/me", headers=auth(after)).status_code == 200
    finally:
        b.close()
    assert_one_audit_entry(store, f"alias {ADDRESS}", [*held.values(), accounts[ADDRESS], NEW])


def test_a_password_change_through_v1_me_revokes_the_token_that_asked_as_well(
    client, store, web_settings, accounts, held
) -> None:
    body = {"current_password": accounts[ADDRESS], "new_password": NEW}
    r = client.post("/v1/me/password", headers=auth(held["mine"]), json=body)
    assert r.status_code == 204, r.text
    assert_only_mine_revoked(client, held)
    assert credentials.unlock(store, web_settings, ADDRESS, NEW).alias.name == "rémi"
    entries = store.query_logs(LogQuery(kind="audit", limit=100)).entries
    (entry,) = [e for e in entries if e.status == "alias.tokens-revoke"]
    assert entry.detail.startswith(f"by token laptop ({_token_id(store, 'laptop')}) of {ADDRESS}: ")


@pytest.mark.parametrize("how", ["current password", "recovery key", "mailbox reset"])
def test_an_administrator_setting_the_password_through_the_api_revokes_the_users_tokens(
    client, store, web_settings, accounts, held, how
) -> None:
    admin = tokens.create_token(store, "admin", ["passwords:write"])[1]
    alias_id = aliases.get_alias(store, ADDRESS).id
    if how == "current password":
        body = {"current_password": accounts[ADDRESS]}
    elif how == "recovery key":
        body = {"recovery_key": credentials.add_recovery_key(store, web_settings, ADDRESS, accounts[ADDRESS])}
    else:
        body = {"reset_mailbox": True}
    r = client.post(f"/v1/aliases/{alias_id}/password", headers=auth(admin), json=body)
    assert r.status_code == 200, r.text
    assert_only_mine_revoked(client, held)
    made = _token_id(store, "admin")
    assert_one_audit_entry(store, f"token admin ({made})", [*held.values(), admin, r.json()["password"]])


def test_an_administrator_setting_the_password_in_the_web_admin_revokes_the_users_tokens(
    signed_in, client, store, accounts, held
) -> None:
    alias_id = aliases.get_alias(store, ADDRESS).id
    signed_in.get(f"/admin/aliases/{alias_id}")
    r = signed_in.post(f"/admin/aliases/{alias_id}/password", {"current_password": accounts[ADDRESS]})
    assert r.status_code == 200, r.text
    assert_only_mine_revoked(client, held)
    assert_one_audit_entry(store, "root@example.test", [*held.values(), accounts[ADDRESS]])


def _token_id(store, name: str) -> str:
    return next(t.id for t in store.list_tokens() if t.name == name)
