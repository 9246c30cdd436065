"""``/v1/me/sieve`` over real HTTPS (issue 22): a user's own token reads and writes the filters and
vacation reply as rules or as Sieve text (RFC 5228), checks a script and gets the error's line,
cannot replace a script from a mail program as the active one without saying so, and an
administrator's token is refused there."""

from __future__ import annotations

import ssl

import httpx
import pytest

from sealmail.services import aliases, sieverules, sievescripts, tokens
from sealmail.sieve import rules as sieve_rules

from selfkit import ADDRESS, OTHER, auth, make_alias, own_token, problem

RULES = {
    "vacation": {"enabled": True, "subject": 'Parti "loin" \\ ☀', "message": "Retour le 5.\nZoé", "days": 3},
    "forwarding": {"enabled": True, "to": ["zoé@exemple.fr"], "keep_copy": True},
    "filters": [{"field": "subject", "match": "contains", "value": "facture", "action": "fileinto", "folder": "Été"}],
}


@pytest.fixture
def client(api, certs):
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=60,
    ) as c:
        yield c


@pytest.fixture
def token(store, web_settings) -> str:
    for address in (ADDRESS, OTHER):
        make_alias(store, web_settings, address)
    return own_token(store, ADDRESS)


def test_rules_are_saved_active_and_read_back(client, store, token) -> None:
    r = client.get("/v1/me/sieve", headers=auth(token))
    assert r.status_code == 200, r.text
    empty = r.json()
    assert (empty["exists"], empty["active"], empty["active_script"]) == (False, False, None)
    assert empty["rules"] == sieve_rules.Rules().model_dump(mode="json")
    r = client.put("/v1/me/sieve", headers=auth(token), json={"rules": RULES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["exists"], body["active"], body["active_script"]) == (True, True, sieverules.SCRIPT)
    assert sieve_rules.validate(body["rules"]) == sieve_rules.validate(RULES)
    assert 'fileinto :create "Été";' in body["script"]
    mine = aliases.get_alias(store, ADDRESS).id
    assert store.get_sieve_script(mine, sieverules.SCRIPT).content == body["script"]
    assert client.get("/v1/me/sieve", headers=auth(token)).json() == body
    # The other alias has nothing.
    theirs = aliases.get_alias(store, OTHER).id
    assert store.list_sieve_scripts(theirs) == []


def test_a_script_as_text_and_its_errors_line(client, store, token) -> None:
    broken = 'require "fileinto";\r\nif header :contains "subject" "x" {\r\n  fileinto "Été"\r\n}\r\n'
    for path, method in (("/v1/me/sieve/check", "POST"), ("/v1/me/sieve", "PUT")):
        body = problem(client.request(method, path, headers=auth(token), json={"script": broken}), 422)
        assert body["line"] == 4
        assert body["detail"].startswith("line 4: ")
    assert store.list_sieve_scripts(aliases.get_alias(store, ADDRESS).id) == []
    fixed = broken.replace('"Été"\r\n', '"Été";\r\n')
    r = client.post("/v1/me/sieve/check", headers=auth(token), json={"script": fixed})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    r = client.post("/v1/me/sieve/check", headers=auth(token), json={"rules": RULES})
    assert r.json()["script"] == sieve_rules.to_sieve(sieve_rules.validate(RULES))
    r = client.put("/v1/me/sieve", headers=auth(token), json={"script": fixed})
    assert r.status_code == 200, r.text
    assert r.json()["rules"] is None
    assert r.json()["note"] == sieve_rules.HAND_EDITED
    assert r.json()["script"] == fixed.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rules": RULES, "script": "keep;"},
        {"rules": {"vacation": {"enabled": True, "message": "x", "days": 99}}},
        {"rules": {"filters": [{"field": "body", "value": "x", "action": "stop"}]}},
        {"script": "keep;", "unknown": 1},
    ],
)
def test_bad_bodies_are_422_problems(client, token, body: dict) -> None:
    problem(client.put("/v1/me/sieve", headers=auth(token), json=body), 422)


def test_a_script_from_a_mail_program_stays_active_until_asked(client, store, token) -> None:
    mine = aliases.get_alias(store, ADDRESS).id
    sievescripts.save_and_activate(store, mine, "roundcube", "keep;\n")
    body = problem(client.put("/v1/me/sieve", headers=auth(token), json={"rules": RULES}), 409)
    assert body["active_script"] == "roundcube"
    assert store.get_sieve_script(mine, sieverules.SCRIPT) is None
    r = client.put("/v1/me/sieve", headers=auth(token), json={"rules": RULES, "activate": False})
    assert r.status_code == 200, r.text
    assert (r.json()["active"], r.json()["active_script"]) == (False, "roundcube")
    r = client.put("/v1/me/sieve", headers=auth(token), json={"rules": RULES, "activate": True})
    assert (r.json()["active"], r.json()["active_script"]) == (True, sieverules.SCRIPT)


def test_an_administrators_token_and_no_token_are_refused(client, store, token) -> None:
    _, admin = tokens.create_token(store, "admin", ["aliases:read", "aliases:write"])
    for method, path in (("GET", "/v1/me/sieve"), ("PUT", "/v1/me/sieve"), ("POST", "/v1/me/sieve/check")):
        assert client.request(method, path, headers=auth(admin), json={"script": "keep;"}).status_code == 403, path
        assert client.request(method, path, json={"script": "keep;"}).status_code == 401, path


def test_openapi_describes_the_sieve_endpoints(client) -> None:
    spec = client.get("/v1/openapi.json").json()
    assert {"get", "put"} <= set(spec["paths"]["/v1/me/sieve"])
    assert "post" in spec["paths"]["/v1/me/sieve/check"]
    schemas = spec["components"]["schemas"]
    assert {"Rules", "Vacation", "Forwarding", "Filter", "SieveIn", "SieveOut"} <= set(schemas)
