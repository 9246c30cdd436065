"""The deliverability checks' pure parts: how blocklist answers are read, the order of a report,
certificate names, the HELO name's SPF verdicts over an in-memory zone, and the web page's report
cache (one run at a time)."""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509

from sealmail.doctor import blocklists
from sealmail.doctor.certificates import covers
from sealmail.doctor.findings import Report, ok, problem, warning
from sealmail.doctor.host import check_helo_spf
from sealmail.doctor.run import ReportCache
from sealmail.mailauth.dnsview import MemoryDns

from doctorkit import TestCA

ZEN = next(b for b in blocklists.BLOCKLISTS if b.zone == "zen.spamhaus.org")
SPAMCOP = next(b for b in blocklists.BLOCKLISTS if b.zone == "bl.spamcop.net")


def test_query_names_rfc5782_2_1_and_2_4() -> None:
    """IPv4: the octets reversed; IPv6: 32 nibbles reversed; only lists with IPv6 entries get IPv6."""
    assert blocklists.query_name(ZEN, "203.0.113.5") == "5.113.0.203.zen.spamhaus.org"
    assert blocklists.query_name(ZEN, "2001:db8::5") == (
        "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"
    )
    assert blocklists.query_name(SPAMCOP, "2001:db8::5") is None


@pytest.mark.parametrize(
    ("answers", "outcome", "meaning"),
    [
        ([], "clean", ""),
        (["127.0.0.2"], "listed", "SBL: a known source of spam"),
        (["127.0.0.4", "127.0.0.10"], "listed", "XBL: an infected or exploited machine"),
        (["127.255.255.254"], "refused", "query refused: asked through a public or open resolver"),
        (["127.255.255.255"], "refused", "query refused: too many queries from this resolver"),
        (["127.255.255.252"], "refused", "query refused (Spamhaus: a typing error"),
        (["127.0.0.8"], "unexpected", "not a code this list documents"),  # inside 127.0.0.x, undocumented
        (["198.51.100.80"], "unexpected", "not a code this list documents"),  # a resolver making answers up
        (["127.0.0.2", "127.255.255.254"], "refused", "query refused"),  # a refusal is never a listing
        (["127.0.0.2", "198.51.100.80"], "unexpected", "not a code"),
    ],
)
def test_spamhaus_answers_are_read_by_their_documented_codes(answers, outcome, meaning) -> None:
    verdict = blocklists.judge(ZEN, answers)
    assert verdict.outcome == outcome
    assert all(code in answers for code, _ in verdict.codes)
    if meaning:
        assert verdict.codes[0][1].startswith(meaning)


def test_every_list_documents_its_codes_and_where_to_ask_for_removal() -> None:
    names = {b.name for b in blocklists.BLOCKLISTS}
    assert {"Spamhaus ZEN", "Barracuda", "SpamCop", "UCEPROTECT level 1"} <= names
    for blocklist in blocklists.BLOCKLISTS:
        assert blocklist.listed, blocklist.name
        assert all(code.startswith("127.0.0.") for code in blocklist.listed), blocklist.name
        assert not set(blocklist.listed) & set(blocklist.refused)
        assert blocklist.removal.startswith("https://")
    assert blocklists.judge(SPAMCOP, ["127.255.255.254"]).outcome == "unexpected"  # Spamhaus' code, not SpamCop's


def test_a_report_puts_problems_first_and_exits_1_only_for_them() -> None:
    findings = [
        ok("ptr", "a", "a", "fine"),
        warning("blocklist", "refused", "b", "b", "refused", "use a resolver"),
        problem("spf", "missing", "c", "c", "no SPF", "publish one"),
        ok("mx", "d", "d", "fine"),
    ]
    report = Report("mail.example.test", [], "none", [], findings)
    assert [f.severity for f in report.findings] == ["problem", "warning", "ok", "ok"]
    assert [f.id for f in report.findings] == ["spf.missing:c", "blocklist.refused:b", "ptr.ok:a", "mx.ok:d"]
    assert report.exit_code == 1
    assert Report("h", [], "none", [], findings[:2]).exit_code == 0  # warnings alone
    assert report.as_dict()["summary"] == {"problem": 1, "warning": 1, "ok": 2}


def test_certificate_names_rfc6125_6_4(tmp_path) -> None:
    """A wildcard stands for exactly the leftmost label; names compare without case."""
    ca = TestCA(tmp_path)
    cert = x509.load_pem_x509_certificate(ca.issue("c", ("Mail.Example.Test", "*.example.net"), 30).cert.read_bytes())
    assert covers(cert, "mail.example.test")
    assert covers(cert, "mx.example.net")
    assert not covers(cert, "example.net")
    assert not covers(cert, "a.mx.example.net")
    assert not covers(cert, "example.test")


HELO = "mail.example.test"
HOST_ADDRESSES = {(HELO, "A"): ["203.0.113.5"], (HELO, "AAAA"): ["2001:db8::5"]}


def _helo_spf(*records: str, txt: object = None) -> dict[str, tuple[str, str]]:
    """The HELO check's findings, by id: (severity, statement). ``txt``: the TXT answer instead
    ("TEMP": the server fails)."""
    answer = txt if txt is not None else [[r.encode()] for r in records]
    dns = MemoryDns({**HOST_ADDRESSES, (HELO, "TXT"): answer})
    found = check_helo_spf(dns, HELO, ["203.0.113.5", "2001:db8::5"], "example.test", querytime=5)
    return {f.id: (f.severity, f.statement) for f in found}


def test_rfc7208_2_3_the_helo_identity_is_evaluated_for_each_address() -> None:
    """The HELO identity (RFC 7208 §2.3), evaluated by the same code as a domain's MAIL FROM: ``a``
    is the name's own A and AAAA records."""
    assert {i: s for i, (s, _) in _helo_spf("v=spf1 a -all").items()} == {
        f"helo-spf.ok:{HELO}:203.0.113.5": "ok",
        f"helo-spf.ok:{HELO}:2001:db8::5": "ok",
    }
    only_v4 = _helo_spf("v=spf1 ip4:203.0.113.5 -all")
    assert only_v4[f"helo-spf.ok:{HELO}:203.0.113.5"][0] == "ok"
    assert only_v4[f"helo-spf.disallowed:{HELO}:2001:db8::5"][0] == "problem"


def test_rfc7208_8_2_a_neutral_helo_record_is_read_like_none() -> None:
    """RFC 7208 §8.2: a neutral result is treated exactly like none: a warning, not a pass."""
    found = _helo_spf("v=spf1 ?all")
    assert {i: s for i, (s, _) in found.items()} == {
        f"helo-spf.neutral:{HELO}:203.0.113.5": "warning",
        f"helo-spf.neutral:{HELO}:2001:db8::5": "warning",
    }
    assert "neither allows nor forbids 203.0.113.5" in found[f"helo-spf.neutral:{HELO}:203.0.113.5"][1]


def test_rfc7208_4_5_two_helo_records_are_a_permanent_error() -> None:
    found = _helo_spf("v=spf1 a -all", "v=spf1 mx -all")
    assert list(found) == [f"helo-spf.invalid:{HELO}"]
    assert found[f"helo-spf.invalid:{HELO}"][0] == "problem"


def test_a_helo_name_dns_does_not_answer_is_could_not_check() -> None:
    found = _helo_spf(txt="TEMP")
    assert list(found) == [f"helo-spf.unchecked:{HELO}"]
    assert found[f"helo-spf.unchecked:{HELO}"][1].startswith(f"could not check the SPF record of {HELO}")


def test_a_missing_helo_record_names_the_zone_that_lists_it_only_when_one_does() -> None:
    dns = MemoryDns(HOST_ADDRESSES)
    (listed,) = check_helo_spf(dns, HELO, ["203.0.113.5"], "example.test", querytime=5)
    assert listed.id == f"helo-spf.missing:{HELO}"
    assert listed.fix.endswith("`sealmail dns-records example.test` lists it.")
    (elsewhere,) = check_helo_spf(dns, HELO, ["203.0.113.5"], None, querytime=5)
    assert "sealmail dns-records" not in elsewhere.fix
    assert f"publish TXT {HELO} with the value v=spf1 a -all" in elsewhere.fix


async def test_the_report_cache_runs_once_for_requests_that_overlap() -> None:
    """Two clicks while a run is under way get that run's report; a later click runs again."""
    cache = ReportCache(ttl=60)
    runs = 0
    gate = asyncio.Event()

    async def run() -> Report:
        nonlocal runs
        runs += 1
        await gate.wait()
        return Report("h", [], "none", [], [])

    assert cache.latest() is None
    first = asyncio.create_task(cache.refresh(run))
    second = asyncio.create_task(cache.refresh(run))
    await asyncio.sleep(0.01)
    gate.set()
    assert await first is await second
    assert runs == 1
    assert cache.latest() is await first
    await cache.refresh(run)
    assert runs == 2
    expired = ReportCache(ttl=0)
    await expired.refresh(run)
    assert expired.latest() is None
