"""``/v1/me`` over real HTTPS (issue 22): a token a user made for their own address does that
address's own operations (quota, password, recovery key, export) and nothing else — no
administrator's endpoint, no other alias; an administrator's token keeps working as before and
cannot use ``/v1/me``."""

from __future__ import annotations

import ssl

import httpx
import pytest

from sealmail.services import aliases, credentials, selfservice, tokens
from sealmail.services.credentials import AuthenticationFailed

from selfkit import ACTOR, ADDRESS, OTHER, auth, make_alias, own_token, problem, read_zip


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


def test_an_own_token_reads_its_address_and_quota(client, store, accounts) -> None:
    token = own_token(store, ADDRESS)
    r = client.get("/v1/me", headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["address"] == ADDRESS
    assert body["alias_id"] == aliases.get_alias(store, ADDRESS).id
    assert body["two_factor"] is False
    assert body["recovery_key"] is False
    assert body["quota"]["limit_bytes"] > 0
    r = client.get("/v1/me/quota", headers=auth(token))
    assert set(r.json()) == {"used_bytes", "stored_bytes", "waiting_bytes", "limit_bytes"}


def test_an_own_token_never_reaches_an_administrators_endpoint_or_another_alias(
    client, store, accounts, web_settings
) -> None:
    token = own_token(store, ADDRESS)
    mine = aliases.get_alias(store, ADDRESS).id
    theirs = aliases.get_alias(store, OTHER).id
    for method, path in (
        ("GET", "/v1/domains"),
        ("GET", "/v1/aliases"),
        ("GET", f"/v1/aliases/{mine}"),
        ("GET", f"/v1/aliases/{theirs}"),
        ("PATCH", f"/v1/aliases/{theirs}"),
        ("DELETE", f"/v1/aliases/{theirs}"),
        ("POST", f"/v1/aliases/{theirs}/password"),
        ("POST", f"/v1/aliases/{mine}/password"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tokens"),
        ("GET", "/v1/logs/audit"),
        ("GET", "/v1/sending"),
        ("GET", "/v1/stats/spam"),
    ):
        body = problem(client.request(method, path, headers=auth(token), json={}), 403)
        assert "/v1/me" in body["detail"], (method, path)
    assert credentials.unlock(store, web_settings, OTHER, accounts[OTHER])  # untouched
    # /v1/me has no way to name another address: it is the token's own, whatever is asked.
    r = client.get("/v1/me", params={"alias_id": theirs}, headers=auth(token))
    assert r.json()["address"] == ADDRESS


def test_administrators_tokens_work_as_before_and_not_for_me(client, store, accounts) -> None:
    admin = tokens.create_token(store, "ci", list(tokens.SCOPES))[1]
    assert client.get("/v1/aliases", headers=auth(admin)).status_code == 200
    body = problem(client.get("/v1/me", headers=auth(admin)), 403)
    assert "self-service" in body["detail"]
    problem(client.post("/v1/me/export", headers=auth(admin), json={"password": "x"}), 403)
    # An administrator cannot mint a token with the account scope either.
    problem(client.post("/v1/tokens", headers=auth(admin), json={"name": "x", "scopes": ["account"]}), 422)
    own_token(store, ADDRESS)
    listed = client.get("/v1/tokens", headers=auth(admin)).json()
    assert {t["alias_id"] for t in listed} == {None, aliases.get_alias(store, ADDRESS).id}


def test_password_change_through_the_api(client, store, accounts, web_settings) -> None:
    token = own_token(store, ADDRESS)
    old = accounts[ADDRESS]
    new = "a new passphrase for the api"
    problem(client.post("/v1/me/password", headers=auth(token), json={"current_password": old}), 422)
    short = {"current_password": old, "new_password": "short"}
    problem(client.post("/v1/me/password", headers=auth(token), json=short), 422)
    body = problem(
        client.post("/v1/me/password", headers=auth(token), json={"current_password": "nope", "new_password": new}),
        403,
    )
    assert body["detail"] == "the current password is wrong"
    r = client.post("/v1/me/password", headers=auth(token), json={"current_password": old, "new_password": new})
    assert r.status_code == 204, r.text
    assert credentials.unlock(store, web_settings, ADDRESS, new).alias.name == "rémi"
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(store, web_settings, ADDRESS, old)
    # The new password revokes the user's tokens, this one too (tests/web/test_self_tokens_revoked.py).
    problem(client.get("/v1/me", headers=auth(token)), 401)


def test_wrong_passwords_through_the_api_lock_the_address_out(client, store, accounts) -> None:
    token = own_token(store, ADDRESS)
    for _ in range(5):
        problem(client.post("/v1/me/recovery-key", headers=auth(token), json={"password": "wrong!"}), 403)
    body = problem(client.post("/v1/me/recovery-key", headers=auth(token), json={"password": accounts[ADDRESS]}), 429)
    assert "wait 15 minutes" in body["detail"]


def test_recovery_key_through_the_api(client, store, accounts, web_settings) -> None:
    token = own_token(store, ADDRESS)
    r = client.post("/v1/me/recovery-key", headers=auth(token), json={"password": accounts[ADDRESS]})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    key = r.json()["recovery_key"]
    assert key.startswith("smrk1-")
    assert client.get("/v1/me", headers=auth(token)).json()["recovery_key"] is True
    kept = credentials.set_password(store, web_settings, ADDRESS, recovery_key=key)
    assert credentials.unlock(store, web_settings, ADDRESS, kept)


def test_export_through_the_api(client, store, accounts, web_settings) -> None:
    token = own_token(store, ADDRESS)
    unlocked = credentials.unlock(store, web_settings, ADDRESS, accounts[ADDRESS])
    from sealmail.store import events as ev
    from sealmail.store.mailstore import MailStore

    box = MailStore(web_settings.data_dir, ev.InProcessBus()).open_sync(
        unlocked.mailbox_id, unlocked.secrets.mailbox_key
    )
    raw = "Subject: über\r\nFrom: zoë@exemple.fr\r\n\r\nKöln\r\n".encode()
    box.append("INBOX", raw)
    box.close()
    problem(client.post("/v1/me/export", headers=auth(token), json={"password": "wrong"}), 403)
    problem(client.post("/v1/me/export", headers=auth(token), json={"password": "x", "format": "pst"}), 422)
    r = client.post("/v1/me/export", headers=auth(token), json={"password": accounts[ADDRESS], "format": "eml"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert read_zip(r.content).read("INBOX/1.eml") == raw
    r = client.post("/v1/me/export", headers=auth(token), json={"password": accounts[ADDRESS]})
    assert b"K\xc3\xb6ln" in read_zip(r.content).read("INBOX.mbox")


def test_a_token_ends_with_its_revocation_its_alias_or_its_mailbox(client, store, accounts, web_settings) -> None:
    token = own_token(store, ADDRESS)
    me = selfservice.member(store, aliases.get_alias(store, ADDRESS).id)
    (made,) = selfservice.list_tokens(store, me)
    selfservice.revoke_token(store, me, made.id, ACTOR)
    problem(client.get("/v1/me", headers=auth(token)), 401)

    token = own_token(store, ADDRESS)
    aliases.update_alias(store, ADDRESS, enabled=False)
    problem(client.get("/v1/me", headers=auth(token)), 403)
    aliases.update_alias(store, ADDRESS, enabled=True)
    assert client.get("/v1/me", headers=auth(token)).status_code == 200
    aliases.remove_alias(store, web_settings, ADDRESS)
    problem(client.get("/v1/me", headers=auth(token)), 401)  # revoked with its alias


def test_the_openapi_document_describes_me(client) -> None:
    paths = client.get("/v1/openapi.json").json()["paths"]
    for path in ("/v1/me", "/v1/me/quota", "/v1/me/password", "/v1/me/recovery-key", "/v1/me/export"):
        assert path in paths
    assert "application/zip" in paths["/v1/me/export"]["post"]["responses"]["200"]["content"]
    assert "/v1/me/backup/download" in paths


def test_a_users_token_holds_no_administrators_scope_whatever_its_record_says(client, store, accounts) -> None:
    """Defence in depth: a token record of an alias that names every scope (a bug, an edited
    database) is still good for /v1/me only."""
    from sealmail.config.models import ApiToken

    secret = tokens.PREFIX + "forged-record-with-every-scope-000000000000"
    alias_id = aliases.get_alias(store, ADDRESS).id
    store.add_token(
        ApiToken(name="odd", token_hash=tokens.digest(secret), scopes=list(tokens.SCOPES), alias_id=alias_id)
    )
    for path in ("/v1/aliases", "/v1/domains", "/v1/tokens"):
        problem(client.get(path, headers=auth(secret)), 403)
    assert client.get("/v1/me", headers=auth(secret)).status_code == 200
