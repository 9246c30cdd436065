"""Webhook targets are public HTTPS hosts: the save-time half of the egress policy (sealmail.net.egress).

RFC 6890 (special-purpose address registries) lists the ranges that are not globally reachable;
RFC 6761 §6.3 reserves ``localhost``. A webhook to any of them would let an alias owner make the
server POST into its own network (server-side request forgery).
"""

from __future__ import annotations

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.errors import InvalidInput
from sealmail.services import aliases, domains

FORBIDDEN = {
    "plain http": "http://hooks.example.org/in",
    "other scheme": "ftp://hooks.example.org/in",
    "loopback v4": "https://127.0.0.1/in",
    "loopback v4 short form": "https://127.1/in",
    "loopback v4 integer form": "https://2130706433/in",
    "loopback v4 hex form": "https://0x7f.0.0.1/in",
    "loopback v6": "https://[::1]/in",
    "localhost name": "https://localhost:8443/in",
    "localhost subdomain": "https://api.localhost/in",
    "link-local v4 (cloud metadata)": "https://169.254.169.254/latest/meta-data",
    "link-local v6": "https://[fe80::1]/in",
    "private 10/8": "https://10.0.0.5/in",
    "private 172.16/12": "https://172.20.1.1/in",
    "private 192.168/16": "https://192.168.1.1/in",
    "unique-local fc00::/7": "https://[fd00::1]/in",
    "unspecified v4": "https://0.0.0.0/in",
    "unspecified v6": "https://[::]/in",
    "multicast v4": "https://224.0.1.1/in",
    "multicast v6": "https://[ff02::1]/in",
    "shared CGN 100.64/10": "https://100.64.0.1/in",
    "broadcast": "https://255.255.255.255/in",
    "v4-mapped loopback": "https://[::ffff:127.0.0.1]/in",
    "NAT64 of private": "https://[64:ff9b::a00:1]/in",
    "6to4 of private": "https://[2002:c0a8:101::1]/in",
}


@pytest.fixture
def store(settings):
    store = SQLiteConfigStore(settings.config_db_path)
    domains.add_domain(store, "example.test")
    yield store
    store.close()


@pytest.mark.parametrize("url", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden_webhook_targets_are_refused_when_saved(store, url: str) -> None:
    """RFC 6890 non-global ranges, RFC 6761 §6.3 localhost and non-HTTPS URLs are refused at save."""
    with pytest.raises(InvalidInput, match="webhook"):
        aliases.add_alias(store, "hook@example.test", recipients=[url])
    aliases.add_alias(store, "hook@example.test", storage=True)
    with pytest.raises(InvalidInput, match="webhook"):
        aliases.update_alias(store, "hook@example.test", recipients=[url])


def test_public_https_targets_are_saved(store) -> None:
    alias = aliases.add_alias(
        store, "hook@example.test", recipients=["https://hooks.example.org/in", "https://93.184.216.34:8443/x"]
    )
    assert alias.recipients == ["https://hooks.example.org/in", "https://93.184.216.34:8443/x"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/in", "https://localhost/in", "https://[fd00::1]/in"])
def test_the_setting_allows_private_targets_and_http(store, url: str) -> None:
    alias = aliases.add_alias(store, "hook@example.test", recipients=[url], allow_private_webhooks=True)
    assert alias.recipients == [url]
