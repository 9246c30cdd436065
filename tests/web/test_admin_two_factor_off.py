"""Issue 22: an administrator turns off a user's two-factor authentication (RFC 6238 TOTP for the
account pages) when the user lost the app: in the web admin's alias page (a POST with the session's
CSRF token and a confirmation, offered only while it is on) and in the REST API, through the same
service the command line uses (tests/cli/test_cli.py). Each is one audit entry. The secret is sealed
with the mailbox key: turning it off needs neither the key nor a code, and the password alone
signs in to the account pages again."""

from __future__ import annotations

import re
import ssl

import httpx
import pyotp
import pytest

from sealmail.config.models import LogQuery
from sealmail.services import aliases, credentials, selfservice, tokens, totp

from selfkit import ACTOR, ADDRESS, OTHER, auth, make_alias
from webkit import AccountBrowser

FORM = re.compile(r'<form method="post" action="(/admin/aliases/[^"]+/two-factor-off)"')


@pytest.fixture
def accounts(store, web_settings) -> dict[str, str]:
    """ADDRESS with two-factor authentication on, OTHER without."""
    made = {address: make_alias(store, web_settings, address) for address in (ADDRESS, OTHER)}
    unlocked = credentials.unlock(store, web_settings, ADDRESS, made[ADDRESS])
    secret = totp.new_secret()
    selfservice.enable_totp(store, unlocked, secret, pyotp.TOTP(secret).now(), ACTOR)
    return made


def two_factor(store, address: str) -> bool:
    return store.get_credential(aliases.get_alias(store, address).id).totp_secret is not None


def entries(store, action: str):
    return [e for e in store.query_logs(LogQuery(kind="audit", limit=100)).entries if e.status == action]


def test_the_alias_page_offers_it_only_while_it_is_on(signed_in, store, accounts) -> None:
    mine = aliases.get_alias(store, ADDRESS).id
    page = signed_in.get(f"/admin/aliases/{mine}").text
    assert FORM.search(page).group(1) == f"/admin/aliases/{mine}/two-factor-off"
    assert "Two-factor authentication is on" in page
    assert 'name="confirm"' in page
    theirs = aliases.get_alias(store, OTHER).id
    page = signed_in.get(f"/admin/aliases/{theirs}").text
    assert FORM.search(page) is None
    assert "two-factor-off" not in page


def test_turning_it_off_needs_the_csrf_token_and_the_confirmation(web, certs, signed_in, store, accounts) -> None:
    path = f"/admin/aliases/{aliases.get_alias(store, ADDRESS).id}/two-factor-off"
    signed_in.get(path.removesuffix("/two-factor-off"))
    # No token, a forged one, another origin: refused, nothing changes.
    assert signed_in.post(path, {"confirm": "yes"}, csrf=False).status_code == 403
    assert signed_in.post(path, {"confirm": "yes", "csrf": "x" * 43}).status_code == 403
    r = signed_in.post(path, {"confirm": "yes"}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert two_factor(store, ADDRESS)
    # The token without the confirmation: the page again, with why.
    r = signed_in.post(path, {})
    assert r.status_code == 422
    assert "Tick the box to confirm" in r.text
    assert two_factor(store, ADDRESS)
    assert entries(store, "alias.two-factor-off") == []

    r = signed_in.post(path, {"confirm": "yes"})
    assert r.status_code == 303, r.text
    assert not two_factor(store, ADDRESS)
    page = signed_in.get(r.headers["location"]).text
    assert "Two-factor authentication is off for rémi@universitéxyz.fr" in page
    assert FORM.search(page) is None
    (entry,) = entries(store, "alias.two-factor-off")
    assert entry.detail == "by root@example.test"
    assert entry.address == aliases.own_address(aliases.get_alias(store, ADDRESS))
    assert (entry.component, entry.peer) == ("web", "127.0.0.1")
    # The user signs in to the account pages with the password alone again.
    user = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        assert user.sign_in(ADDRESS, accounts[ADDRESS]).headers["location"] == "/account/"
    finally:
        user.close()
    # Asked again (a second tab): nothing to do, no second entry.
    assert signed_in.post(path, {"confirm": "yes"}).status_code == 303
    assert len(entries(store, "alias.two-factor-off")) == 1


@pytest.fixture
def client(api, certs):
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=60,
    ) as c:
        yield c


def test_the_api_turns_it_off_with_aliases_write(client, store, accounts) -> None:
    alias_id = aliases.get_alias(store, ADDRESS).id
    writer = tokens.create_token(store, "helpdesk", ["aliases:read", "aliases:write"])[1]
    reader = tokens.create_token(store, "reader", ["aliases:read"])[1]
    me = selfservice.member(store, alias_id)
    own = selfservice.create_token(store, me, "mine", ACTOR)[1]
    assert client.get(f"/v1/aliases/{alias_id}", headers=auth(reader)).json()["two_factor"] is True

    path = f"/v1/aliases/{alias_id}/two-factor"
    for secret, status in ((reader, 403), (own, 403)):
        r = client.delete(path, headers=auth(secret))
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert client.delete("/v1/aliases/nope/two-factor", headers=auth(writer)).status_code == 404
    assert two_factor(store, ADDRESS)

    assert client.delete(path, headers=auth(writer)).status_code == 204
    assert not two_factor(store, ADDRESS)
    assert client.get(f"/v1/aliases/{alias_id}", headers=auth(reader)).json()["two_factor"] is False
    assert client.delete(path, headers=auth(writer)).status_code == 204  # already off: the same answer
    (entry,) = entries(store, "alias.two-factor-off")
    helpdesk = next(t.id for t in store.list_tokens() if t.name == "helpdesk")
    assert entry.detail == f"by token helpdesk ({helpdesk})"
    assert "/v1/aliases/{alias_id}/two-factor" in client.get("/v1/openapi.json").json()["paths"]
