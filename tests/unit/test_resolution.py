"""Which alias gets mail for an address: the table Forward Email users rely on."""

from __future__ import annotations

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.errors import InvalidInput
from sealmail.services import aliases, domains
from sealmail.services.resolve import resolve


@pytest.fixture
def store(tmp_path):
    s = SQLiteConfigStore(tmp_path / "config.sqlite")
    domains.add_domain(s, "example.test")
    domains.add_domain(s, "universitéxyz.fr")
    domains.add_domain(s, "other.test")
    aliases.add_alias(s, "demo@example.test")
    aliases.add_alias(s, "user+special@example.test", recipients=["special@elsewhere.test"])
    aliases.add_alias(s, "user@example.test", recipients=["user@elsewhere.test"])
    aliases.add_alias(s, "off@example.test", enabled=False, disabled_reply="defer")
    aliases.add_alias(s, "/^sales-.*$/@example.test", recipients=["sales@elsewhere.test"])
    aliases.add_alias(s, "*@example.test", recipients=["catchall@elsewhere.test"])
    aliases.add_alias(s, "rémi@universitéxyz.fr")
    aliases.add_alias(s, "用户@universitéxyz.fr")
    aliases.add_alias(s, "only@other.test")
    yield s
    s.close()


@pytest.mark.parametrize(
    ("address", "alias", "match"),
    [
        ("demo@example.test", "demo", "exact"),
        ("DEMO@EXAMPLE.TEST", "demo", "exact"),
        ("Demo@example.test.", "demo", "exact"),
        ("demo+news@example.test", "demo", "plus"),
        ("user+special@example.test", "user+special", "exact"),  # an alias named with + wins over plus
        ("user+other@example.test", "user", "plus"),
        ("off@example.test", "off", "exact"),  # disabled still resolves: the caller replies
        ("sales-eu@example.test", "/^sales-.*$/", "regex"),
        ("SALES-EU@example.test", "/^sales-.*$/", "regex"),
        ("sales-eu+tag@example.test", "/^sales-.*$/", "regex"),
        ("nobody@example.test", "*", "catchall"),
        ("rémi@universitéxyz.fr", "rémi", "exact"),
        ("Rémi@xn--universitxyz-jeb.fr", "rémi", "exact"),
        ("re\u0301mi@universitéxyz.fr", "rémi", "exact"),  # NFD input, NFC alias
        ("rémi+x@UNIVERSITÉXYZ.FR", "rémi", "plus"),
        ("用户@xn--universitxyz-jeb.fr", "用户", "exact"),
        ("nobody@other.test", None, None),  # hosted, no catch-all: unknown user
    ],
)
def test_resolution_table(store, address: str, alias: str | None, match: str | None) -> None:
    result = resolve(store, address)
    assert result.hosted
    assert (result.alias.name if result.alias else None) == alias
    assert result.match == match


def test_disabled_alias_carries_its_reply(store) -> None:
    result = resolve(store, "off@example.test")
    assert result.alias is not None
    assert (result.alias.enabled, result.alias.disabled_reply) == (False, "defer")


def test_domain_not_hosted(store) -> None:
    result = resolve(store, "demo@not-hosted.test")
    assert not result.hosted
    assert result.alias is None


def test_malformed_address_is_an_input_error(store) -> None:
    with pytest.raises(InvalidInput):
        resolve(store, "no-at-sign")
    with pytest.raises(InvalidInput):
        resolve(store, "a..b@example.test")


def test_regex_aliases_are_tried_oldest_first(tmp_path) -> None:
    s = SQLiteConfigStore(tmp_path / "c.sqlite")
    domains.add_domain(s, "example.test")
    aliases.add_alias(s, "/^a/@example.test", recipients=["first@x.test"])
    aliases.add_alias(s, "/^ab/@example.test", recipients=["second@x.test"])
    assert resolve(s, "abc@example.test").alias.name == "/^a/"
