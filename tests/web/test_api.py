"""The REST API through real HTTPS (httpx against the running component)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from sealmail.config.models import LogEntry, LogQuery, now
from sealmail.services import credentials, tokens

from selfkit import auth, problem

ALL = list(tokens.SCOPES)


@pytest.fixture
def client(api, certs):
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        timeout=30,
    ) as c:
        yield c


@pytest.fixture
def token(store) -> str:
    return tokens.create_token(store, "ci", ALL)[1]


# ---- authentication and scopes ------------------------------------------------------------------------
def test_requests_without_a_valid_token_are_refused(client, store) -> None:
    body = problem(client.get("/v1/domains"), 401)
    assert "Bearer" in body["detail"]
    r = client.get("/v1/domains", headers=auth("sm_" + "x" * 43))
    problem(r, 401)
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    problem(client.get("/v1/domains", headers={"authorization": "Basic dTpw"}), 401)

    made, secret = tokens.create_token(store, "old", ALL)
    assert client.get("/v1/domains", headers=auth(secret)).status_code == 200
    tokens.revoke_token(store, made.id)
    problem(client.get("/v1/domains", headers=auth(secret)), 401)


def test_scopes_limit_what_a_token_can_do(client, store) -> None:
    _, reader = tokens.create_token(store, "reader", ["domains:read", "aliases:read"])
    assert client.get("/v1/domains", headers=auth(reader)).status_code == 200
    r = client.post("/v1/domains", json={"name": "a.test"}, headers=auth(reader))
    body = problem(r, 403)
    assert body["required_scope"] == "domains:write"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    for method, path, scope in [
        ("GET", "/v1/logs/delivery", "logs:read"),
        ("GET", "/v1/tokens", "tokens:read"),
        ("POST", "/v1/tokens", "tokens:write"),
        ("POST", "/v1/aliases/x/password", "passwords:write"),
        ("DELETE", "/v1/aliases/x", "aliases:write"),
    ]:
        r = client.request(method, path, headers=auth(reader), json={"name": "t", "scopes": ["logs:read"]})
        assert problem(r, 403)["required_scope"] == scope
    assert store.list_domains() == []


def test_failed_tokens_lock_the_address_out(client, token) -> None:
    for _ in range(10):
        assert client.get("/v1/domains", headers=auth("sm_wrong")).status_code == 401
    problem(client.get("/v1/domains", headers=auth(token)), 429)


def test_token_secrets_are_stored_hashed_and_last_use_recorded(client, store, token) -> None:
    assert client.get("/v1/domains", headers=auth(token)).status_code == 200
    (saved,) = store.list_tokens()
    assert saved.token_hash == tokens.digest(token)
    assert token not in repr(saved)
    assert saved.last_used_at is not None


# ---- validation ---------------------------------------------------------------------------------------
def test_validation_errors_name_each_problem(client, token) -> None:
    body = problem(client.post("/v1/domains", json={"nam": "a.test"}, headers=auth(token)), 422)
    assert {"detail": "Field required", "pointer": "#/name"} in body["errors"]
    assert {e["pointer"] for e in body["errors"]} == {"#/name", "#/nam"}

    body = problem(client.post("/v1/domains", json={"name": "not a domain!"}, headers=auth(token)), 422)
    assert "not a domain!" in body["detail"] or "invalid" in body["detail"].lower()

    body = problem(client.post("/v1/domains", content=b"{", headers=auth(token)), 422)
    assert body["errors"]

    body = problem(client.get("/v1/logs/delivery?limit=0", headers=auth(token)), 422)
    assert body["errors"][0]["query"] == "limit"

    body = problem(client.post("/v1/tokens", json={"name": "x", "scopes": ["root"]}, headers=auth(token)), 422)
    assert "unknown scope 'root'" in body["detail"]


def test_conflicts_and_missing_objects(client, token) -> None:
    assert client.post("/v1/domains", json={"name": "a.test"}, headers=auth(token)).status_code == 201
    problem(client.post("/v1/domains", json={"name": "A.TEST"}, headers=auth(token)), 409)
    problem(client.get("/v1/domains/b.test", headers=auth(token)), 404)
    problem(client.get("/v1/aliases/0123", headers=auth(token)), 404)
    problem(client.get("/v1/nowhere", headers=auth(token)), 404)
    problem(client.put("/v1/domains", headers=auth(token)), 405)


# ---- domains and aliases ------------------------------------------------------------------------------
def test_domains_and_their_dns_records(client, token, store) -> None:
    r = client.post("/v1/domains", json={"name": "universitéxyz.fr"}, headers=auth(token))
    assert r.status_code == 201
    assert r.json()["name"] == "xn--universitxyz-jeb.fr"
    assert [d["unicode_name"] for d in client.get("/v1/domains", headers=auth(token)).json()] == ["universitéxyz.fr"]
    records = client.get("/v1/domains/universitéxyz.fr/dns", headers=auth(token)).json()
    types = {(r["type"], r["name"].split(".")[0]) for r in records}
    assert ("MX", "xn--universitxyz-jeb") in types
    assert ("TXT", "rsa1") in types
    assert ("TXT", "_dmarc") in types
    assert all(r["status"] is None for r in records)
    assert client.delete("/v1/domains/universitéxyz.fr", headers=auth(token)).status_code == 204
    assert store.list_domains() == []


def test_domain_spam_thresholds_are_patched_validated_and_cleared(client, token, store) -> None:
    """Issue 21: PATCH changes only the thresholds given, an explicit null clears one; a bad value
    is an RFC 9457 problem (422) and changes nothing; the change is in the audit log."""
    client.post("/v1/domains", json={"name": "universitéxyz.fr"}, headers=auth(token))
    path = "/v1/domains/universitéxyz.fr"
    r = client.patch(path, json={"spam_reject": 12, "spam_junk": 4.5}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("spam_reject", "spam_defer", "spam_junk")} == {
        "spam_reject": 12.0,
        "spam_defer": None,
        "spam_junk": 4.5,
    }
    assert client.get(path, headers=auth(token)).json()["spam_reject"] == 12.0
    assert (
        "must be above the junk"
        in problem(client.patch(path, json={"spam_reject": 3}, headers=auth(token)), 422)["detail"]
    )
    problem(client.patch(path, json={"spam_defer": 0}, headers=auth(token)), 422)
    problem(client.patch(path, json={"spam_defer": 1001}, headers=auth(token)), 422)
    problem(client.patch(path, json={"name": "other.test"}, headers=auth(token)), 422)
    problem(client.patch("/v1/domains/absent.test", json={"spam_junk": 3}, headers=auth(token)), 404)
    assert store.get_domain("xn--universitxyz-jeb.fr").spam_reject == 12.0
    r = client.patch(path, json={"spam_reject": None}, headers=auth(token))
    assert (r.json()["spam_reject"], r.json()["spam_junk"]) == (None, 4.5)
    audit = [e for e in store.query_logs(LogQuery(kind="audit")).entries if e.status == "domain.spam"]
    assert [e.detail.split(": ", 1)[1] for e in audit] == ["reject=rspamd", "junk=4.5, reject=12"]
    schema = client.get("/v1/openapi.json").json()
    assert "patch" in schema["paths"]["/v1/domains/{name}"]
    assert "/v1/stats/spam" in schema["paths"]


def test_spam_statistics_sum_the_days_and_rank_the_symbols(client, store) -> None:
    """``GET /v1/stats/spam`` (scope logs:read): zero-filled days, totals, symbols by messages."""
    from datetime import UTC, datetime, timedelta

    from sealmail.config.models import SpamCounts
    from sealmail.services import tokens

    today = datetime.now(UTC).date()
    store.add_spam_counts(
        [
            SpamCounts(today - timedelta(days=1), {"scanned": 4, "junk": 2}, {"BAYES_SPAM": 2, "GTUBE": 1}),
            SpamCounts(today, {"scanned": 1, "rejected": 1}, {"GTUBE": 1}),
            SpamCounts(today - timedelta(days=9), {"scanned": 50}, {"OLD_ONE": 50}),
        ]
    )
    _, reader = tokens.create_token(store, "stats", ["logs:read"])
    _, other = tokens.create_token(store, "domains", ["domains:read"])
    problem(client.get("/v1/stats/spam", headers=auth(other)), 403)
    r = client.get("/v1/stats/spam", params={"days": 3, "top": 1}, headers=auth(reader))
    assert r.status_code == 200, r.text
    stats = r.json()
    assert [d["scanned"] for d in stats["days"]] == [0, 4, 1]
    assert stats["totals"] == {"scanned": 5, "rejected": 1, "deferred": 0, "junk": 2, "unchecked": 0}
    assert stats["top_symbols"] == [{"symbol": "BAYES_SPAM", "messages": 2}]  # GTUBE ties, second by name
    problem(client.get("/v1/stats/spam", params={"days": 0}, headers=auth(reader)), 422)


def test_alias_lifecycle_with_quota_usage_and_password(client, token, store, web_settings) -> None:
    client.post("/v1/domains", json={"name": "example.test"}, headers=auth(token))
    r = client.post(
        "/v1/aliases",
        json={"address": "Rémi@example.test", "quota": "2G", "description": "the boss", "storage": True},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    alias = r.json()
    assert alias["address"] == "rémi@example.test"
    assert alias["quota"] == 2 * 1024**3
    assert alias["quota_effective"] == 2 * 1024**3
    assert alias["usage_bytes"] is None
    assert alias["has_password"] is False

    r = client.post(f"/v1/aliases/{alias['id']}/password", headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    password = body["password"]
    assert {(c["protocol"], c["security"]) for c in body["client_settings"]} >= {
        ("IMAP", "SSL/TLS"),
        ("SMTP", "SSL/TLS"),
    }
    assert all(c["username"] == "rémi@example.test" for c in body["client_settings"])
    unlocked = credentials.unlock(store, web_settings, "rémi@example.test", password)
    store.record_usage(unlocked.alias.id, 12345)

    # A mailbox with keys: a new password needs the current one (or a reset).
    r = client.post(f"/v1/aliases/{alias['id']}/password", json={}, headers=auth(token))
    assert "current password" in problem(r, 422)["detail"]
    r = client.post(f"/v1/aliases/{alias['id']}/password", json={"current_password": "wrong"}, headers=auth(token))
    assert problem(r, 422)["detail"] == "the current password or recovery key is wrong"
    r = client.post(f"/v1/aliases/{alias['id']}/password", json={"current_password": password}, headers=auth(token))
    second = r.json()["password"]
    assert second != password
    credentials.unlock(store, web_settings, "rémi@example.test", second)

    r = client.patch(
        f"/v1/aliases/{alias['id']}",
        json={
            "recipients": ["ops@example.org", "https://hooks.example.org/x"],
            "enabled": False,
            "disabled_reply": "defer",
        },
        headers=auth(token),
    )
    changed = r.json()
    assert changed["recipients"] == ["ops@example.org", "https://hooks.example.org/x"]
    assert (changed["enabled"], changed["disabled_reply"]) == (False, "defer")
    assert changed["usage_bytes"] == 12345
    assert changed["quota"] == 2 * 1024**3  # untouched
    r = client.patch(f"/v1/aliases/{alias['id']}", json={"quota": None}, headers=auth(token))
    assert r.json()["quota"] is None
    assert r.json()["quota_effective"] == web_settings.default_quota
    problem(client.patch(f"/v1/aliases/{alias['id']}", json={"quota": "lots"}, headers=auth(token)), 422)
    problem(client.patch(f"/v1/aliases/{alias['id']}", json={"recipients": ["ftp://x"]}, headers=auth(token)), 422)
    # Webhooks to the server's own network are refused when saved (RFC 6890 non-global ranges).
    for url in ("http://hooks.example.org/x", "https://169.254.169.254/latest", "https://[fd00::1]/x"):
        r = client.patch(f"/v1/aliases/{alias['id']}", json={"recipients": [url]}, headers=auth(token))
        assert "webhook_allow_private" in problem(r, 422)["detail"]
    r = client.patch(f"/v1/aliases/{alias['id']}", json={"recipients": [], "storage": False}, headers=auth(token))
    assert "mail to it is lost" in problem(r, 422)["detail"]

    found = client.get("/v1/aliases", params={"q": "boss"}, headers=auth(token)).json()
    assert [a["id"] for a in found] == [alias["id"]]
    assert client.get("/v1/aliases", params={"q": "nobody"}, headers=auth(token)).json() == []
    assert client.delete(f"/v1/aliases/{alias['id']}", headers=auth(token)).status_code == 204
    assert store.list_aliases() == []


def test_catch_all_and_regex_aliases(client, token) -> None:
    client.post("/v1/domains", json={"name": "example.test"}, headers=auth(token))
    r = client.post(
        "/v1/aliases", json={"address": "*@example.test", "recipients": ["a@example.org"]}, headers=auth(token)
    )
    assert r.json()["kind"] == "catchall"
    assert r.json()["storage"] is False
    r = client.post(
        "/v1/aliases",
        json={"address": "/^sales-.*$/@example.test", "recipients": ["b@example.org"]},
        headers=auth(token),
    )
    assert r.json()["kind"] == "regex"
    r = client.post(f"/v1/aliases/{r.json()['id']}/password", headers=auth(token))
    assert "catch-all and regex" in problem(r, 422)["detail"]
    r = client.post(
        "/v1/aliases", json={"address": "/(a)\\1/@example.test", "recipients": ["b@example.org"]}, headers=auth(token)
    )
    problem(r, 422)


# ---- tokens -------------------------------------------------------------------------------------------
def test_tokens_are_created_once_listed_without_secret_and_revoked(client, token) -> None:
    r = client.post("/v1/tokens", json={"name": "deploy", "scopes": ["aliases:read"]}, headers=auth(token))
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    made = r.json()
    assert made["token"].startswith("sm_")
    listed = client.get("/v1/tokens", headers=auth(token)).json()
    assert {t["name"] for t in listed} == {"ci", "deploy"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert client.get("/v1/aliases", headers=auth(made["token"])).status_code == 200
    r = client.delete(f"/v1/tokens/{made['id']}", headers=auth(token))
    assert r.json()["revoked_at"] is not None
    assert client.get("/v1/aliases", headers=auth(made["token"])).status_code == 401


def test_a_token_can_only_mint_scopes_it_holds(client, store) -> None:
    """RFC 6749 §3.3 / RFC 6750 §3.1: a token's scope bounds what it may do, minting included.

    A tokens:write token asking for a scope it lacks gets 403 (insufficient_scope) as problem+json
    (RFC 9457) naming the missing scopes, and nothing is stored; a subset of its own scopes is fine.
    """
    _, minter = tokens.create_token(store, "minter", ["tokens:write", "aliases:read"])
    for wanted in (["domains:write"], ["aliases:read", "tokens:read"], list(tokens.SCOPES)):
        r = client.post("/v1/tokens", json={"name": "escalate", "scopes": wanted}, headers=auth(minter))
        body = problem(r, 403)
        assert body["missing_scopes"] == [s for s in wanted if s not in ("tokens:write", "aliases:read")]
        assert "only grant scopes it holds" in body["detail"]
    assert [t.name for t in store.list_tokens()] == ["minter"]

    r = client.post("/v1/tokens", json={"name": "sub", "scopes": ["aliases:read"]}, headers=auth(minter))
    assert r.status_code == 201
    assert r.json()["scopes"] == ["aliases:read"]
    same = client.post(
        "/v1/tokens", json={"name": "same", "scopes": ["aliases:read", "tokens:write"]}, headers=auth(minter)
    )
    assert same.status_code == 201
    # The minted token is bounded the same way: it cannot climb back above its own scopes either.
    r = client.post("/v1/tokens", json={"name": "x", "scopes": ["logs:read"]}, headers=auth(same.json()["token"]))
    assert problem(r, 403)["missing_scopes"] == ["logs:read"]


# ---- logs ---------------------------------------------------------------------------------------------
def test_delivery_and_error_logs_page_and_filter(client, token, store) -> None:
    from datetime import timedelta

    base = now() - timedelta(hours=1)
    for i in range(7):
        e = LogEntry(
            "delivery",
            "jobs" if i % 2 else "mx",
            "delivered" if i % 2 else "stored",
            domain="example.test",
            address=f"u{i}@example.test",
        )
        e.time = base + timedelta(seconds=i)
        store.append_log(e)
    store.append_log(LogEntry("error", "jobs", "failed", domain="example.test", detail="DNS timeout"))

    page = client.get("/v1/logs/delivery", params={"limit": 3}, headers=auth(token)).json()
    assert [e["address"] for e in page["entries"]] == ["u6@example.test", "u5@example.test", "u4@example.test"]
    seen = [e["id"] for e in page["entries"]]
    while page["next_cursor"]:
        page = client.get(
            "/v1/logs/delivery", params={"limit": 3, "cursor": page["next_cursor"]}, headers=auth(token)
        ).json()
        seen += [e["id"] for e in page["entries"]]
    assert len(seen) == len(set(seen)) == 7

    outbound = client.get("/v1/logs/delivery", params={"direction": "outbound"}, headers=auth(token)).json()
    assert {e["component"] for e in outbound["entries"]} == {"jobs"}
    window = client.get(
        "/v1/logs/delivery",
        params={"since": (base + timedelta(seconds=2)).isoformat(), "until": (base + timedelta(seconds=4)).isoformat()},
        headers=auth(token),
    ).json()
    assert [e["address"] for e in window["entries"]] == ["u3@example.test", "u2@example.test"]
    errors = client.get("/v1/logs/errors", params={"status": "failed"}, headers=auth(token)).json()
    assert [e["detail"] for e in errors["entries"]] == ["DNS timeout"]
    problem(client.get("/v1/logs/errors", params={"cursor": "!!"}, headers=auth(token)), 422)
    problem(client.get("/v1/logs/delivery", params={"direction": "sideways"}, headers=auth(token)), 422)


def test_every_write_is_audited_without_secrets(client, token, store) -> None:
    client.post("/v1/domains", json={"name": "example.test"}, headers=auth(token))
    alias = client.post("/v1/aliases", json={"address": "me@example.test"}, headers=auth(token)).json()
    client.patch(f"/v1/aliases/{alias['id']}", json={"description": "x"}, headers=auth(token))
    password = client.post(f"/v1/aliases/{alias['id']}/password", headers=auth(token)).json()["password"]
    made = client.post("/v1/tokens", json={"name": "t2", "scopes": ["logs:read"]}, headers=auth(token)).json()
    client.delete(f"/v1/tokens/{made['id']}", headers=auth(token))
    client.delete(f"/v1/aliases/{alias['id']}", headers=auth(token))
    client.delete("/v1/domains/example.test", headers=auth(token))
    entries = store.query_logs(LogQuery(kind="audit")).entries
    assert [e.status for e in reversed(entries)] == [
        "domain.add",
        "alias.create",
        "alias.update",
        "alias.password",
        "token.create",
        "token.revoke",
        "alias.remove",
        "domain.remove",
    ]
    assert all(e.component == "api" and e.detail.startswith("by token ci") and e.peer == "127.0.0.1" for e in entries)
    text = repr(entries)
    assert password not in text
    assert made["token"] not in text
    api_view = client.get("/v1/logs/audit", headers=auth(token)).json()
    assert len(api_view["entries"]) == 8
    # the audit log takes the shared page filters and its own status (the action)
    tokens_only = client.get("/v1/logs/audit", params={"status": "token.create"}, headers=auth(token)).json()
    assert [e["status"] for e in tokens_only["entries"]] == ["token.create"]
    page = client.get("/v1/logs/audit", params={"limit": 2}, headers=auth(token)).json()
    assert [e["status"] for e in page["entries"]] == ["domain.remove", "alias.remove"]
    assert page["next_cursor"]


def test_audit_entries_say_what_changed_and_where(client, token, store) -> None:
    """Each write's audit entry names its domain, the alias's own address and what changed; the web
    admin writes the same entries for the same changes (test_web_pages.py)."""
    client.post("/v1/domains", json={"name": "example.test"}, headers=auth(token))
    alias = client.post("/v1/aliases", json={"address": "me@example.test"}, headers=auth(token)).json()
    client.patch(f"/v1/aliases/{alias['id']}", json={"quota": "1G", "description": "x"}, headers=auth(token))
    client.post(f"/v1/aliases/{alias['id']}/password", headers=auth(token))
    reset = {"reset_mailbox": True}
    client.post(f"/v1/aliases/{alias['id']}/password", json=reset, headers=auth(token))
    client.post("/v1/tokens", json={"name": "t2", "scopes": ["logs:read", "aliases:read"]}, headers=auth(token))
    ci = next(t for t in store.list_tokens() if t.name == "ci")
    who = f"by token ci ({ci.id})"
    entries = [(e.status, e.domain, e.address, e.detail) for e in reversed(store.query_logs(LogQuery("audit")).entries)]
    assert entries == [
        ("domain.add", "example.test", None, who),
        ("alias.create", "example.test", "me@example.test", who),
        ("alias.update", "example.test", "me@example.test", f"{who}: description, quota"),
        ("alias.password", "example.test", "me@example.test", f"{who}: generated"),
        ("alias.password", "example.test", "me@example.test", f"{who}: reset mailbox"),
        ("token.create", None, None, f"{who}: t2 (aliases:read, logs:read)"),
    ]


def test_openapi_document(client) -> None:
    doc = client.get("/v1/openapi.json").json()
    assert doc["info"]["title"] == "Sealmail API"
    assert {"/v1/domains", "/v1/aliases", "/v1/aliases/{alias_id}/password", "/v1/tokens", "/v1/logs/delivery"} <= set(
        doc["paths"]
    )
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    post = doc["paths"]["/v1/aliases"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert client.get("/docs").status_code == 404  # no page that would load scripts from a CDN
