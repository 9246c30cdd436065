"""The records ``sealmail dns-records`` gives (and the deployment publishes, unchanged).

The deployment's roles do not compute records: what they publish is this list, so every choice the
deployment makes (MTA-STS mode, DMARC policy, report address, public addresses) must show here.
"""

from __future__ import annotations

import hashlib

import pytest

from sealmail.services.dnsrecords import host_names, mta_sts_policy, records_for
from sealmail.settings import Settings


def _settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, domain="universitéxyz.fr", **values)


def _by_key(records):
    return {(r.name, r.type): r for r in records}


def test_mta_sts_mode_reaches_the_policy_and_its_id_rfc8461_3_2(tmp_path) -> None:
    """RFC 8461 §3.1: the id changes whenever the policy does, so senders fetch the new mode."""
    testing = _settings(tmp_path, mta_sts_mode="testing")
    enforce = _settings(tmp_path, mta_sts_mode="enforce")
    assert "mode: testing\n" in mta_sts_policy(testing)
    assert "mode: enforce\n" in mta_sts_policy(enforce)
    ids = []
    for settings in (testing, enforce):
        record = _by_key(records_for(settings, "universitéxyz.fr"))[("_mta-sts.xn--universitxyz-jeb.fr", "TXT")]
        expected = hashlib.sha256(mta_sts_policy(settings).encode()).hexdigest()[:20]
        assert record.value == f"v=STSv1; id={expected}"
        ids.append(expected)
    assert ids[0] != ids[1]


def test_dmarc_policy_and_report_addresses_rfc7489_6_3_rfc8460_3(tmp_path) -> None:
    records = _by_key(records_for(_settings(tmp_path, dmarc_policy="reject"), "example.test"))
    assert records[("_dmarc.example.test", "TXT")].value == "v=DMARC1; p=reject; rua=mailto:postmaster@example.test"
    assert records[("_smtp._tls.example.test", "TXT")].value == "v=TLSRPTv1; rua=mailto:postmaster@example.test"


def test_a_report_address_in_unicode_is_a_valid_mailto_uri_rfc6068_2(tmp_path) -> None:
    settings = _settings(tmp_path, report_address="rémi@universitéxyz.fr")
    records = _by_key(records_for(settings, "example.test"))
    uri = "mailto:r%C3%A9mi@xn--universitxyz-jeb.fr"
    assert records[("_dmarc.example.test", "TXT")].value.endswith(f"rua={uri}")
    assert records[("_smtp._tls.example.test", "TXT")].value == f"v=TLSRPTv1; rua={uri}"


def test_public_addresses_give_a_and_aaaa_records_for_the_host_and_the_web_admin(tmp_path) -> None:
    settings = _settings(tmp_path, public_ipv4="192.0.2.10", public_ipv6="2001:db8::10")
    records = records_for(settings, "universitéxyz.fr")
    addresses = {(r.name, r.type, r.value) for r in records if r.type in ("A", "AAAA")}
    assert addresses == {
        ("mail.xn--universitxyz-jeb.fr", "A", "192.0.2.10"),
        ("mail.xn--universitxyz-jeb.fr", "AAAA", "2001:db8::10"),
        ("xn--universitxyz-jeb.fr", "A", "192.0.2.10"),
        ("xn--universitxyz-jeb.fr", "AAAA", "2001:db8::10"),
    }
    # Another hosted domain points at the mail host by name only.
    other = records_for(settings, "example.test")
    assert not [r for r in other if r.type in ("A", "AAAA")]
    assert {r.zone for r in other} == {"example.test"}
    assert {r.zone for r in records} == {"xn--universitxyz-jeb.fr"}


def test_rfc7208_2_3_the_helo_name_has_an_spf_record_of_its_own(tmp_path) -> None:
    """RFC 7208 §2.3: receivers check the HELO identity too, and judge a bounce (null reverse-path)
    by it alone: the mail host's name gets ``v=spf1 a -all`` (its own addresses), in the zone that
    holds it only."""
    records = records_for(_settings(tmp_path), "universitéxyz.fr")
    helo = [r for r in records if r.name == "mail.xn--universitxyz-jeb.fr" and r.type == "TXT"]
    assert [(r.value, r.zone) for r in helo] == [("v=spf1 a -all", "xn--universitxyz-jeb.fr")]
    assert "HELO" in helo[0].purpose
    other = records_for(_settings(tmp_path), "example.test")
    assert not [r for r in other if r.value.startswith("v=spf1") and r.name != "example.test"]


def test_a_helo_name_at_the_apex_keeps_the_one_spf_record_rfc7208_4_5(tmp_path) -> None:
    """The host named as the domain itself: the domain's record (mx) already allows it for HELO,
    and a second v=spf1 record at one name would be a permanent error (RFC 7208 §4.5)."""
    settings = _settings(tmp_path, hostname="universitéxyz.fr")
    spf = [r for r in records_for(settings, "universitéxyz.fr") if r.value.startswith("v=spf1")]
    assert [(r.name, r.value) for r in spf] == [("xn--universitxyz-jeb.fr", "v=spf1 mx -all")]


def test_a_helo_name_that_is_a_hosted_domain_keeps_the_one_spf_record_rfc7208_4_5(tmp_path) -> None:
    """mail.<domain> hosted as a domain of its own publishes ``v=spf1 mx -all`` in its zone, which
    allows the host (its MX) for HELO as well: the parent zone must not add a second v=spf1 record at
    that name (RFC 7208 §4.5: two records are a permanent error for every check of the name)."""
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.services import domains
    from sealmail.services.dnsrecords import helo_spf_zone

    settings = _settings(tmp_path)
    store = SQLiteConfigStore(tmp_path / "config.sqlite")
    try:
        for name in ("universitéxyz.fr", "mail.universitéxyz.fr"):
            domains.add_domain(store, name)
        every = [r for d in ("universitéxyz.fr", "mail.universitéxyz.fr") for r in records_for(settings, d, store)]
        spf = [(r.name, r.value) for r in every if r.value.startswith("v=spf1")]
        assert spf == [
            ("xn--universitxyz-jeb.fr", "v=spf1 mx -all"),
            ("mail.xn--universitxyz-jeb.fr", "v=spf1 mx -all"),
        ]
        assert helo_spf_zone(settings, ["universitéxyz.fr", "mail.universitéxyz.fr"]) is None
        assert helo_spf_zone(settings, ["universitéxyz.fr"]) == "universitéxyz.fr"
    finally:
        store.close()


def test_no_public_address_no_address_record(tmp_path) -> None:
    assert not [r for r in records_for(_settings(tmp_path), "universitéxyz.fr") if r.type in ("A", "AAAA")]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("public_ipv4", "2001:db8::1", "not an IPv4"),
        ("public_ipv6", "192.0.2.1", "not an IPv6"),
        ("public_ipv4", "mail.example", "not an IP address"),
    ],
)
def test_public_addresses_are_checked(tmp_path, field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(tmp_path, **{field: value})


def test_host_names_cover_every_name_that_leads_here(tmp_path) -> None:
    """The certificate must cover each name a client or a sending MTA uses (RFC 8461 §3.3: mta-sts.<domain>)."""
    settings = _settings(tmp_path)
    names = host_names(settings, ["universitéxyz.fr", "example.test"])
    assert names[0] == "mail.xn--universitxyz-jeb.fr"
    for expected in (
        "xn--universitxyz-jeb.fr",
        "mta-sts.xn--universitxyz-jeb.fr",
        "autoconfig.xn--universitxyz-jeb.fr",
        "autodiscover.xn--universitxyz-jeb.fr",
        "imap.xn--universitxyz-jeb.fr",
        "smtp.xn--universitxyz-jeb.fr",
        "mta-sts.example.test",
        "autoconfig.example.test",
    ):
        assert expected in names
    assert len(names) == len(set(names))
    assert all(name.isascii() for name in names)
