"""Sender authentication: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC (RFC 7489), ARC (RFC 8617),
Authentication-Results (RFC 8601), SRS. Unit tests over an in-memory zone."""

from __future__ import annotations

import random

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealmail.mailauth import spf
from sealmail.mailauth.checks import (
    AuthResults,
    DkimResult,
    authenticate,
    check_arc,
    check_dkim,
    check_dmarc,
    organizational_domain,
    remove_forged_results,
)
from sealmail.mailauth.dnsview import MemoryDns
from sealmail.mailauth.srs import InvalidSrs, Srs
from sealmail.services.dkim import ensure_keys
from sealmail.services.dnsrecords import records_for
from sealmail.smtp import dkimsign
from sealmail.smtp.forwarding import arc_seal


def T(*values: str) -> list[list[bytes]]:  # noqa: N802 - reads like a zone file
    return [[v.encode()] for v in values]


ZONE = {
    ("example.org", "TXT"): T("v=spf1 ip4:192.0.2.0/24 include:_spf.partner.test -all"),
    ("_spf.partner.test", "TXT"): T("v=spf1 ip6:2001:db8::/32 a:relay.partner.test ~all"),
    ("relay.partner.test", "A"): ["198.51.100.7"],
    ("soft.test", "TXT"): T("v=spf1 ~all"),
    ("neutral.test", "TXT"): T("v=spf1 ?all"),
    ("broken.test", "TXT"): T("v=spf1 ip4:not-an-ip -all"),
    ("loop.test", "TXT"): T("v=spf1 " + " ".join(f"include:l{i}.test" for i in range(11)) + " -all"),
    **{(f"l{i}.test", "TXT"): T("v=spf1 -all") for i in range(11)},
    ("flaky.test", "TXT"): "TEMP",
    ("mx.test", "TXT"): T("v=spf1 mx redirect=redirect.test"),
    ("mx.test", "MX"): [(10, "mail.mx.test")],
    ("mail.mx.test", "A"): ["203.0.113.9"],
    ("redirect.test", "TXT"): T("v=spf1 exists:%{i}._ip.redirect.test -all"),
    ("198.51.100.99._ip.redirect.test", "A"): ["127.0.0.2"],
    ("helo.example.net", "TXT"): T("v=spf1 ip4:192.0.2.44 -all"),
}


@pytest.mark.parametrize(
    ("ip", "sender", "expected"),
    [
        ("192.0.2.10", "alice@example.org", "pass"),  # ip4 mechanism, RFC 7208 §5.6
        ("2001:db8::1", "alice@example.org", "pass"),  # include + ip6 (§5.2, §5.6)
        ("198.51.100.7", "alice@example.org", "pass"),  # include + a (§5.3)
        ("203.0.113.1", "alice@example.org", "fail"),  # include not matching: -all (§5.1)
        ("203.0.113.1", "x@soft.test", "softfail"),
        ("203.0.113.1", "x@neutral.test", "neutral"),
        ("203.0.113.1", "x@nospf.test", "none"),  # no record (§4.5)
        ("203.0.113.1", "x@broken.test", "permerror"),  # syntax error (§4.6)
        ("203.0.113.1", "x@loop.test", "permerror"),  # over 10 DNS-querying terms (§4.6.4)
        ("203.0.113.1", "x@flaky.test", "temperror"),  # SERVFAIL (§2.6.6)
        ("203.0.113.9", "x@mx.test", "pass"),  # mx mechanism (§5.4)
        ("198.51.100.99", "x@mx.test", "pass"),  # redirect + exists with an %{i} macro (§6.1, §5.7, §7)
        ("198.51.100.98", "x@mx.test", "fail"),
    ],
)
def test_spf_results(ip: str, sender: str, expected: str) -> None:
    result = spf.check(MemoryDns(ZONE), ip, sender, "client.example.net")
    assert result.result == expected, result.explanation
    assert result.identity == "mailfrom"


def test_spf_checks_helo_for_the_null_sender() -> None:
    """RFC 7208 §2.4: with MAIL FROM:<> the HELO identity is checked."""
    result = spf.check(MemoryDns(ZONE), "192.0.2.44", "", "helo.example.net")
    assert (result.result, result.identity, result.domain) == ("pass", "helo", "helo.example.net")


@pytest.mark.parametrize(
    ("domain", "count", "unfollowed"),
    [
        ("example.org", 2, ()),  # include + the included a: (ip4/ip6/all cost nothing)
        ("loop.test", 11, ()),  # 11 includes of records without lookups: one over the limit
        ("mx.test", 3, ()),  # mx + redirect + the redirect's exists
        ("soft.test", 0, ()),
        ("nospf.test", 0, ()),
        ("self.test", 2, ()),  # includes itself: the loop is followed once
        ("diamond.test", 6, ()),  # the same record through two includes is asked twice
        ("macro.test", 2, ("%{d}._spf.macro.test", "missing.test")),
    ],
)
def test_spf_lookup_count_rfc7208_4_6_4(domain: str, count: int, unfollowed: tuple[str, ...]) -> None:
    """RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect each cost a DNS query, nested
    includes and redirects too; ``count_lookups`` counts every one a full evaluation can ask."""
    zone = {
        **ZONE,
        ("self.test", "TXT"): T("v=spf1 a include:self.test -all"),
        ("diamond.test", "TXT"): T("v=spf1 include:left.test include:right.test -all"),
        ("left.test", "TXT"): T("v=spf1 include:shared.test -all"),
        ("right.test", "TXT"): T("v=spf1 include:shared.test -all"),
        ("shared.test", "TXT"): T("v=spf1 ptr -all"),
        ("macro.test", "TXT"): T("v=spf1 include:%{d}._spf.macro.test include:missing.test -all"),
    }
    found = spf.count_lookups(MemoryDns(zone), domain)
    assert (found.count, found.unfollowed) == (count, unfollowed)
    assert (found.record is None) == (domain == "nospf.test")


def test_spf_lookup_count_says_when_dns_fails_or_the_record_is_doubled() -> None:
    """A SERVFAIL is not "no record" (RFC 7208 §2.6.6), and two records are an error (§4.5)."""
    import spf as pyspf

    with pytest.raises(pyspf.TempError):
        spf.count_lookups(MemoryDns(ZONE), "flaky.test")
    with pytest.raises(pyspf.PermError):
        spf.count_lookups(MemoryDns({("two.test", "TXT"): T("v=spf1 -all", "v=spf1 mx -all")}), "two.test")


# ---- DKIM ------------------------------------------------------------------------------------------


@pytest.fixture
def signer(settings):
    """a.test with RSA and Ed25519 keys, and a zone holding their public keys."""
    ensure_keys(settings, "a.test")
    zone = {(r.name, "TXT"): T(r.value) for r in records_for(settings, "a.test") if r.type == "TXT"}
    return settings, zone


MESSAGE = (
    b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: Signed\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <d1@a.test>\r\n\r\nThe body.\r\n"
)


def test_dkim_rsa_and_ed25519_pass(signer) -> None:
    settings, zone = signer
    signed = dkimsign.sign(settings, "a.test", MESSAGE)
    results = check_dkim(MemoryDns(zone), signed)
    assert [(r.result, r.domain, r.algorithm) for r in results] == [
        ("pass", "a.test", "rsa-sha256"),
        ("pass", "a.test", "ed25519-sha256"),
    ]


def test_dkim_detects_tampering_and_missing_keys(signer) -> None:
    settings, zone = signer
    signed = dkimsign.sign(settings, "a.test", MESSAGE)
    body_changed = signed.replace(b"The body.", b"The b0dy.")
    assert {r.result for r in check_dkim(MemoryDns(zone), body_changed)} == {"fail"}
    header_changed = signed.replace(b"Subject: Signed", b"Subject: Changed")
    assert {r.result for r in check_dkim(MemoryDns(zone), header_changed)} == {"fail"}
    assert {r.result for r in check_dkim(MemoryDns({}), signed)} <= {"fail", "permerror"}
    temp = dict.fromkeys(zone, "TEMP")
    assert {r.result for r in check_dkim(MemoryDns(temp), signed)} == {"temperror"}
    assert check_dkim(MemoryDns(zone), MESSAGE) == []


# ---- DMARC -----------------------------------------------------------------------------------------


def _spf(result: str, domain: str) -> spf.SpfResult:
    return spf.SpfResult(result, "", "mailfrom", domain)


def _dkim(result: str, domain: str) -> list[DkimResult]:
    return [DkimResult(result, domain)]


DMARC_ZONE = {
    ("_dmarc.a.test", "TXT"): T("v=DMARC1; p=reject; adkim=s; aspf=r"),
    ("_dmarc.example.co.uk", "TXT"): T("v=DMARC1; p=quarantine; sp=reject"),
    ("_dmarc.half.test", "TXT"): T("v=DMARC1; p=reject; pct=0"),
    ("_dmarc.bad.test", "TXT"): T("v=DMARC1; p=whatever"),
    ("_dmarc.two.test", "TXT"): T("v=DMARC1; p=reject", "v=DMARC1; p=none"),
    ("_dmarc.flaky.test", "TXT"): "TEMP",
}


def _from(domain: str) -> bytes:
    return f"From: someone <x@{domain}>\r\nSubject: t\r\n\r\nb\r\n".encode()


@pytest.mark.parametrize(
    ("from_domain", "spf_result", "dkim_result", "expected"),
    [
        ("a.test", _spf("pass", "a.test"), [], ("pass", "reject", "none")),  # SPF aligned (relaxed)
        ("a.test", _spf("pass", "bounce.a.test"), [], ("pass", "reject", "none")),  # relaxed: same org domain
        ("a.test", _spf("fail", "a.test"), _dkim("pass", "a.test"), ("pass", "reject", "none")),
        ("a.test", _spf("fail", "a.test"), _dkim("pass", "mail.a.test"), ("fail", "reject", "reject")),  # adkim=s
        ("a.test", _spf("pass", "other.test"), _dkim("pass", "other.test"), ("fail", "reject", "reject")),
        ("news.example.co.uk", _spf("fail", "x.test"), [], ("fail", "reject", "reject")),  # org record, sp
        ("example.co.uk", _spf("fail", "x.test"), [], ("fail", "quarantine", "quarantine")),
        ("half.test", _spf("fail", "x.test"), [], ("fail", "reject", "quarantine")),  # pct=0 downgrades
        ("nodmarc.test", _spf("fail", "x.test"), [], ("none", None, "none")),
        ("bad.test", _spf("fail", "x.test"), [], ("none", None, "none")),  # invalid p, no rua
        ("two.test", _spf("fail", "x.test"), [], ("none", None, "none")),  # two records: none
        ("flaky.test", _spf("fail", "x.test"), [], ("temperror", None, "none")),
    ],
)
def test_dmarc_alignment_and_policy(from_domain, spf_result, dkim_result, expected) -> None:
    result = check_dmarc(MemoryDns(DMARC_ZONE), _from(from_domain), spf_result, dkim_result, rng=random.Random(1))
    assert (result.result, result.policy, result.disposition) == expected


def test_dmarc_with_several_from_domains_is_a_permerror() -> None:
    message = b"From: a@a.test, b@b.test\r\n\r\nx\r\n"
    assert check_dmarc(MemoryDns(DMARC_ZONE), message, _spf("pass", "a.test"), []).result == "permerror"


def test_organizational_domain_from_the_shipped_public_suffix_list() -> None:
    assert organizational_domain("mail.example.co.uk") == "example.co.uk"
    assert organizational_domain("a.b.example.com") == "example.com"
    assert organizational_domain("xn--universitxyz-jeb.fr") == "xn--universitxyz-jeb.fr"


# ---- ARC -------------------------------------------------------------------------------------------


def test_arc_seal_then_verify(signer) -> None:
    settings, zone = signer
    received = (
        b"Authentication-Results: " + settings.auth_id.encode() + b"; spf=pass smtp.mailfrom=a.test\r\n" + MESSAGE
    )
    sealed = arc_seal(settings, "a.test", received)
    assert sealed.startswith(b"ARC-Seal:")
    assert check_arc(MemoryDns(zone), sealed) == "pass"
    assert check_arc(MemoryDns(zone), sealed.replace(b"The body.", b"Another body.")) == "fail"
    assert check_arc(MemoryDns(zone), MESSAGE) == "none"


# ---- the header ------------------------------------------------------------------------------------


def test_authentication_results_header(signer) -> None:
    settings, zone = signer
    zone.update({("a.test", "TXT"): T("v=spf1 ip4:192.0.2.1 -all"), ("_dmarc.a.test", "TXT"): T("v=DMARC1; p=reject")})
    signed = dkimsign.sign(settings, "a.test", MESSAGE)
    results = authenticate(
        MemoryDns(zone), ip="192.0.2.1", helo="mail.a.test", mail_from="alice@a.test", message=signed
    )
    header = results.header("mx.example.net")
    assert header.startswith("Authentication-Results: mx.example.net;\r\n\tspf=pass smtp.mailfrom=a.test;")
    assert "dkim=pass header.d=a.test header.s=rsa1 header.a=rsa-sha256 header.b=" in header
    assert "dkim=pass header.d=a.test header.s=ed1 header.a=ed25519-sha256" in header
    assert "dmarc=pass (p=reject dis=none) header.from=a.test" in header
    assert header.endswith("arc=none")
    import authres

    parsed = authres.AuthenticationResultsHeader.parse(header.replace("\r\n\t", " "))
    assert parsed.authserv_id == "mx.example.net"
    assert [r.method for r in parsed.results] == ["spf", "dkim", "dkim", "dmarc", "arc"]


def test_no_dkim_signature_is_dkim_none() -> None:
    results = AuthResults(spf.SpfResult("none", "", "mailfrom", "x.test"))
    assert "dkim=none" in results.header("mx")


def test_forged_results_claiming_our_id_are_removed_and_nothing_else() -> None:
    """RFC 8601 §5: results with our authserv-id that arrive from outside are removed."""
    raw = (
        b"Received: from x\r\n"
        b"Authentication-Results: MX.Example.NET; dkim=pass\r\n\theader.d=bank.test\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Authentication-Results: (comment) mx.example.net; spf=pass\r\n"
        b"Subject: hi\r\n\r\nbody Authentication-Results: mx.example.net; stays\r\n"
    )
    cleaned = remove_forged_results(raw, "mx.example.net")
    assert cleaned == (
        b"Received: from x\r\nAuthentication-Results: other.example; spf=fail\r\nSubject: hi\r\n\r\n"
        b"body Authentication-Results: mx.example.net; stays\r\n"
    )
    assert remove_forged_results(b"Subject: nothing\r\n\r\nbody\r\n", "mx.example.net") is None


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_removing_results_never_raises(raw: bytes) -> None:
    cleaned = remove_forged_results(raw, "mx.example.net")
    assert cleaned is None or len(cleaned) <= len(raw)


@settings(max_examples=150)
@given(st.text(max_size=120))
def test_any_dmarc_record_gives_a_result(record: str) -> None:
    zone = {("_dmarc.r.test", "TXT"): T("v=DMARC1; " + record)}
    result = check_dmarc(MemoryDns(zone), _from("r.test"), _spf("fail", "x.test"), [])
    assert result.result in {"none", "pass", "fail", "temperror", "permerror"}


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n\x00"), max_size=80))
def test_any_spf_record_gives_a_result(record: str) -> None:
    zone = {("r.test", "TXT"): T("v=spf1 " + record)}
    result = spf.check(MemoryDns(zone), "192.0.2.1", "x@r.test", "h.test")
    assert result.result in {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"}


# ---- SRS -------------------------------------------------------------------------------------------


def test_srs_round_trip_and_forgery() -> None:
    srs = Srs(b"secret")
    rewritten = srs.forward("Alice@Example.ORG", "fwd.test")
    assert rewritten.startswith("SRS0=")
    assert rewritten.endswith("@fwd.test")
    assert srs.reverse(rewritten) == "Alice@Example.ORG"
    assert srs.reverse(rewritten.upper().replace("@FWD.TEST", "@fwd.test")).lower() == "alice@example.org"
    forged = rewritten.replace("SRS0=", "SRS0=x", 1)
    with pytest.raises(InvalidSrs):
        srs.reverse(forged)
    with pytest.raises(InvalidSrs):
        Srs(b"other secret").reverse(rewritten)
    with pytest.raises(InvalidSrs):
        srs.reverse("plain@fwd.test")
    assert srs.forward("", "fwd.test") == ""  # the null sender stays null


def test_srs_expiry() -> None:
    srs = Srs(b"secret", max_age_days=21)
    day = 86400
    rewritten = srs.forward("a@example.org", "fwd.test", now=1000 * day)
    assert srs.reverse(rewritten, now=1020 * day) == "a@example.org"
    with pytest.raises(InvalidSrs):
        srs.reverse(rewritten, now=1030 * day)


def test_srs1_keeps_the_first_forwarder() -> None:
    first, second = Srs(b"one"), Srs(b"two")
    hop1 = first.forward("a@example.org", "first.test")
    hop2 = second.forward(hop1, "second.test")
    assert hop2.startswith("SRS1=")
    assert hop2.endswith("@second.test")
    assert second.forward(hop2, "third.test").startswith("SRS1=")
    back = second.reverse(hop2)
    assert back == hop1  # the bounce goes to the first forwarder, which reverses it again
    assert first.reverse(back) == "a@example.org"


def test_srs_hash_is_long_base32_and_survives_lower_casing() -> None:
    """A 4-character hash (libsrs2's, about 2^22 values case-insensitively) can be found by trying;
    ours has at least 8 base32 characters (40+ bits) and still survives lower-casing on the way back."""
    srs = Srs(b"secret")
    for sender in ("alice@example.org", "SRS0=abcd=AB=example.org=alice@first.test"):
        rewritten = srs.forward(sender, "fwd.test")
        hashed = rewritten.split("=")[1]
        assert len(hashed) >= 8
        assert set(hashed) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        assert srs.reverse(rewritten.lower()).lower() == sender.lower()


def test_srs1_is_dated_and_expires() -> None:
    """An SRS1 address of ours expires like an SRS0 one (libsrs2's SRS1 is valid forever)."""
    second = Srs(b"two", max_age_days=21)
    day = 86400
    hop1 = Srs(b"one").forward("a@example.org", "first.test", now=1000 * day)
    hop2 = second.forward(hop1, "second.test", now=1000 * day)
    assert second.reverse(hop2, now=1020 * day) == hop1
    with pytest.raises(InvalidSrs):
        second.reverse(hop2, now=1030 * day)
    stamp_moved = hop2.replace(hop2.split("=")[1], hop2.split("=")[1][:-2] + "AA", 1)
    with pytest.raises(InvalidSrs):
        second.reverse(stamp_moved, now=1000 * day)  # the stamp is covered by the hash


def test_srs_addresses_of_the_old_short_hash_are_refused() -> None:
    """The earlier format's stamp is chosen by whoever writes the address: accepting it at all would
    keep its 4-character hash forgeable, so such addresses are refused."""
    import base64
    import hashlib
    import hmac

    stamp = Srs._timestamp()
    old_hash = base64.b64encode(
        hmac.new(b"secret", f"{stamp}example.orgalice".lower().encode(), hashlib.sha1).digest()
    ).decode()[:4]
    with pytest.raises(InvalidSrs):
        Srs(b"secret").reverse(f"SRS0={old_hash}={stamp}=example.org=alice@fwd.test")


def test_srs0_and_srs1_hashes_do_not_stand_for_each_other() -> None:
    srs = Srs(b"secret")
    hop = srs.forward("a@example.org", "fwd.test")
    hashed, stamp, domain, local = hop[5:].rpartition("@")[0].split("=", 3)
    with pytest.raises(InvalidSrs):
        srs.reverse(f"SRS1={hashed}{stamp}={domain}=={local}@fwd.test")


def test_dkim_library_is_the_one_signing() -> None:
    assert hasattr(dkim, "arc_sign")  # dkimpy with ARC support is a declared dependency
