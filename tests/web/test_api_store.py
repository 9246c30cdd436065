"""The API in split mode (issue 19): accounts' mailboxes are made and removed by the data host's store,
and the store being away is a temporary condition (RFC 9110 §15.6.4: 503 with Retry-After)."""

from __future__ import annotations

import ssl

import httpx
import pytest
from storekit import StoreThread

from sealmail.services import tokens

from selfkit import auth
from support import ComponentThread

ALL = list(tokens.SCOPES)


@pytest.fixture
def data_host(web_settings, tmp_path):
    store = StoreThread(web_settings.model_copy(update={"store_host": "data-1"}), tmp_path / "tls")
    yield store
    store.stop()


@pytest.fixture
def client(web_settings, data_host, certs):
    running = ComponentThread("api", data_host.client_settings(web_settings))
    try:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{running.ports['api']}",
            verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
            timeout=30,
        ) as c:
            yield c
    finally:
        running.stop()


def test_api_accounts_go_through_the_store(client, store, data_host) -> None:
    token = tokens.create_token(store, "ci", ALL)[1]
    client.post("/v1/domains", json={"name": "example.test"}, headers=auth(token))
    made = []
    for name in ("a", "b"):
        r = client.post("/v1/aliases", json={"address": f"{name}@example.test", "storage": True}, headers=auth(token))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    r = client.post(f"/v1/aliases/{made[0]}/password", headers=auth(token))
    assert r.status_code == 200, r.text
    mailbox_id = store.get_credential(made[0]).mailbox_id
    assert store.get_mailbox_home(mailbox_id).host == "data-1"  # recorded by the store that made it
    assert client.delete(f"/v1/aliases/{made[0]}", headers=auth(token)).status_code == 204
    assert store.get_mailbox_home(mailbox_id) is None

    data_host.stop()
    r = client.post(f"/v1/aliases/{made[1]}/password", headers=auth(token))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
