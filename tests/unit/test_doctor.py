"""The deliverability checks' pure parts: how blocklist answers are read, the order of a report,
certificate names, and the web page's report cache (one run at a time)."""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509

from sealmail.doctor import blocklists
from sealmail.doctor.certificates import covers
from sealmail.doctor.findings import Report, ok, problem, warning
from sealmail.doctor.run import ReportCache

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
