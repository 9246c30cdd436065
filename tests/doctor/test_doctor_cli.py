"""``sealmail doctor`` through its real console script, against a real DNS server (dnsmasq) with test
zones, the real MX and IMAP listeners (STARTTLS and implicit TLS) with test certificates, an HTTPS
server for the MTA-STS policy, and the MX standing in for a well-known domain's on port "25".

Each test starts from the good host (``doctorkit.DoctorWorld.good_zone``: exactly the records the
app asks for) and breaks one thing; the doctor must name it in the right words, with its fix, put
it first, and exit 1 for a problem (0 for warnings alone). ``--json`` gives the same findings.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from doctorkit import DOMAIN, HOST, IPV4, IPV6, DoctorWorld, Zone, blocklist_name
from policyserver import PolicyServer
from support import ComponentThread, free_port

pytestmark = [pytest.mark.tool("dnsmasq"), pytest.mark.slow]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = DoctorWorld(tmp_path_factory.mktemp("doctor"))
    yield built
    built.close()


@pytest.fixture
def doctor(world, sealmail_bin, clean_env, tmp_path):
    """Run ``sealmail doctor --json`` with the DNS of a zone, and with ``human=True`` also without
    ``--json`` (each run is a Python start: seconds on a busy machine). Returns the exit code, the
    human report's lines ("" without ``human``), standard error and the JSON report."""
    servers = []

    def run(zone: Zone, *args: str, human: bool = False, **env: str):
        dns = world.serve(zone, tmp_path / f"dns{len(servers)}")
        servers.append(dns)
        full = {**clean_env, **world.env(dns, **env)}

        def call(*more: str) -> subprocess.CompletedProcess:
            argv = [sealmail_bin, "doctor", *more, *args]
            return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=120, check=False)

        data = call("--json")
        report = json.loads(data.stdout) if data.stdout else None
        out = ""
        if human:
            said = call()
            assert said.returncode == data.returncode, (said.stdout, data.stdout)
            out = said.stdout
        return data.returncode, out, data.stderr, report

    yield run
    for dns in servers:
        dns.stop()


def by_id(report: dict) -> dict[str, dict]:
    return {f["id"]: f for f in report["findings"]}


def first_lines(stdout: str, n: int) -> list[str]:
    """The first ``n`` finding lines of the human report (after the host, addresses and domains)."""
    lines = [line for line in stdout.splitlines()[4:] if line and not line.startswith(" ")]
    return lines[:n]


def test_a_good_host_is_all_green(world, doctor) -> None:
    code, out, _, report = doctor(world.good_zone(), human=True)
    assert code == 0, out
    assert report["summary"]["problem"] == 0, out
    assert report["summary"]["warning"] == 0, out
    assert report["addresses"] == [IPV4, IPV6]
    assert report["addresses_from"] == "settings"
    assert "addresses: 203.0.113.5, 2001:db8::5 (from the settings SEALMAIL_PUBLIC_IPV4 and" in out
    found = by_id(report)
    assert len(found) == len(report["findings"])  # every id names one finding
    for expected in (
        f"addresses.ok:{HOST}",
        f"ptr.ok:{IPV4}",
        f"ptr.ok:{IPV6}",
        f"blocklist.ok:{IPV4}",
        f"blocklist.ok:{IPV6}",
        "port25.ok:outbound",
        f"mx.ok:{DOMAIN}",
        f"spf.ok:{DOMAIN}:{IPV4}",
        f"spf.ok:{DOMAIN}:{IPV6}",
        f"helo-spf.ok:{HOST}:{IPV4}",
        f"helo-spf.ok:{HOST}:{IPV6}",
        f"dkim.ok:{DOMAIN}:rsa1",
        f"dkim.ok:{DOMAIN}:ed1",
        f"dmarc.ok:{DOMAIN}",
        f"mta-sts.ok:{DOMAIN}",
        f"mta-sts.ok:{DOMAIN}:policy",
        f"tls-rpt.ok:{DOMAIN}",
        f"discovery.ok:{DOMAIN}",
        "certificate.ok:mx",
        "certificate.ok:imaps",
        "certificate.ok:imap",
    ):
        assert expected in found, (expected, out)
    assert "is not listed on Spamhaus ZEN, Barracuda, SpamCop, UCEPROTECT level 1, PSBL, SpamRATS" in out
    assert "IPv6" not in found[f"blocklist.ok:{IPV6}"]["statement"]
    assert found[f"blocklist.ok:{IPV6}"]["statement"] == f"{IPV6} is not listed on Spamhaus ZEN"  # the only IPv6 list
    assert "0 problem(s), 0 warning(s)" in out
    assert all(f["fix"] == "" for f in report["findings"])


def test_a_missing_ptr_rfc1912_2_1(world, doctor) -> None:
    """RFC 1912 §2.1: every internet-reachable host should have a PTR; receivers refuse mail without one."""
    zone = world.good_zone()
    zone.drop("A", HOST)
    zone.bare[HOST] = [IPV4]  # the A record stays, its PTR goes
    code, out, _, report = doctor(zone, human=True)
    assert code == 1
    problem = by_id(report)[f"ptr.missing:{IPV4}"]
    assert problem["severity"] == "problem"
    assert problem["statement"].startswith(f"{IPV4} has no PTR record (reverse DNS)")
    assert problem["fix"].startswith(f"Ask your VPS provider to set the PTR (reverse DNS) of {IPV4} to {HOST}")
    assert first_lines(out, 1) == [f"PROBLEM  {IPV4}: {problem['statement']}"]
    assert f"ptr.ok:{IPV6}" in by_id(report)  # the other address is still fine


def test_a_ptr_that_is_not_the_helo_name_rfc8601_3(world, doctor) -> None:
    """RFC 8601 §3 (iprev): the PTR names another host (forward-confirmed, but not the HELO name)."""
    zone = world.good_zone()
    zone.drop("AAAA", HOST)
    zone.bare[HOST] = [IPV6]
    zone.hosts["vps-5.provider.test"] = [IPV6]  # a name and PTR the provider set up
    code, _, _, report = doctor(zone)
    assert code == 1
    problem = by_id(report)[f"ptr.mismatch:{IPV6}"]
    assert problem["statement"] == (
        f"the PTR of {IPV6} is vps-5.provider.test, not {HOST}, the name this host gives in HELO"
    )
    assert f"set the PTR (reverse DNS) of {IPV6} to {HOST}" in problem["fix"]


def test_ipv4_only_sending_checks_only_the_ipv4_address(world, doctor) -> None:
    """With SEALMAIL_OUTBOUND_IP_FAMILY=ipv4 no mail leaves over IPv6: the IPv6 address's missing PTR,
    its listings and its SPF are no concern of receivers, and the doctor does not report them."""
    zone = world.good_zone()
    zone.drop("AAAA", HOST)
    zone.bare[HOST] = [IPV6]  # the AAAA record stays (mail arrives over IPv6), its PTR goes
    zone.listed.append((blocklist_name(IPV6, "zen.spamhaus.org"), "127.0.0.2"))
    code, _, _, report = doctor(zone)
    assert code == 1  # sending over both families: both problems count
    assert {f"ptr.missing:{IPV6}", f"blocklist.listed:zen.spamhaus.org:{IPV6}"} <= set(by_id(report))
    code, out, _, report = doctor(zone, human=True, SEALMAIL_OUTBOUND_IP_FAMILY="ipv4")
    assert code == 0, out
    assert report["addresses"] == [IPV4]
    found = by_id(report)
    assert found[f"addresses.ok:{IPV6}"]["statement"] == (
        f"{IPV6} is not checked: this host sends no mail over IPv6 (SEALMAIL_OUTBOUND_IP_FAMILY=ipv4)"
    )
    assert not [i for i in found if i.endswith(IPV6) and not i.startswith("addresses.")], found
    assert {f"ptr.ok:{IPV4}", f"blocklist.ok:{IPV4}", f"spf.ok:{DOMAIN}:{IPV4}", f"helo-spf.ok:{HOST}:{IPV4}"} <= set(
        found
    )


def test_a_chosen_source_address_is_the_address_checked(world, doctor) -> None:
    """Receivers see the source address mail leaves from: its PTR and SPF are what count, not the
    host's other IPv4 address. (The port 25 check would connect from it; it is not local here.)"""
    source = "198.51.100.7"
    zone = world.good_zone()
    zone.hosts["vps-7.provider.test"] = [source]
    code, _, _, report = doctor(
        zone,
        SEALMAIL_OUTBOUND_SOURCE_IPV4=source,
        SEALMAIL_OUTBOUND_IP_FAMILY="ipv4",
        SEALMAIL_DOCTOR_PORT25_DOMAINS="",
    )
    assert code == 1
    assert report["addresses"] == [source]
    found = by_id(report)
    assert found[f"addresses.ok:{source}"]["statement"].startswith(
        f"mail leaves from {source} (SEALMAIL_OUTBOUND_SOURCE_IPV4)"
    )
    assert found[f"ptr.mismatch:{source}"]["statement"] == (
        f"the PTR of {source} is vps-7.provider.test, not {HOST}, the name this host gives in HELO"
    )
    assert found[f"spf.disallowed:{DOMAIN}:{source}"]["fix"].startswith(f"Add ip4:{source} before the all")
    assert f"ptr.ok:{IPV4}" not in found


def test_a_dkim_key_that_is_not_the_signing_key_rfc6376_3_6_1(world, doctor) -> None:
    """RFC 6376 §3.6.1: the p= of the published record must be the key the host signs with."""
    zone = world.good_zone()
    other = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    zone.set("TXT", f"ed1._domainkey.{DOMAIN}", other)
    code, out, _, report = doctor(zone, human=True)
    assert code == 1
    problem = by_id(report)[f"dkim.wrong:{DOMAIN}:ed1"]
    assert problem["statement"] == (
        f"the DKIM ed25519 key published at ed1._domainkey.{DOMAIN} is not the key this host signs with: "
        "receivers find its signatures broken"
    )
    assert f"`sealmail dns-records {DOMAIN}`" in problem["fix"]
    assert f"dkim.ok:{DOMAIN}:rsa1" in by_id(report)
    assert first_lines(out, 1)[0].startswith(f"PROBLEM  {DOMAIN}: the DKIM ed25519 key")


def test_a_dkim_key_this_host_lacks_is_a_problem_and_is_not_written(world, doctor) -> None:
    """A host without a domain's key file signs nothing with it. The doctor says so and changes
    nothing: it does not fetch the key from the config store (a run as root would leave a file the
    service cannot read)."""
    key = world.settings.dkim_path / DOMAIN / "ed25519.key"
    aside = key.with_suffix(".aside")
    key.rename(aside)
    try:
        code, _, _, report = doctor(world.good_zone())
        assert not key.exists()
    finally:
        aside.rename(key)
    assert code == 1
    problem = by_id(report)[f"dkim.nokey:{DOMAIN}:ed1"]
    assert problem["statement"] == f"this host has no DKIM ed25519 key for {DOMAIN}: it signs nothing with selector ed1"
    assert "`sealmail domain share-keys`" in problem["fix"]
    assert f"dkim.ok:{DOMAIN}:rsa1" in by_id(report)


def test_an_spf_record_with_too_many_lookups_rfc7208_4_6_4(world, doctor) -> None:
    """RFC 7208 §4.6.4: more than 10 DNS-querying terms, counted through nested includes."""
    zone = world.good_zone()
    zone.set("TXT", DOMAIN, "v=spf1 mx include:a.spf.test include:b.spf.test -all")
    zone.txts.append(("a.spf.test", "v=spf1 " + " ".join(f"include:s{i}.spf.test" for i in range(5)) + " -all"))
    zone.txts.append(("b.spf.test", "v=spf1 " + " ".join(f"a:h{i}.spf.test" for i in range(4)) + " -all"))
    zone.txts += [(f"s{i}.spf.test", "v=spf1 ip4:198.51.100.0/24 -all") for i in range(5)]
    code, _, _, report = doctor(zone)
    assert code == 1
    problem = by_id(report)[f"spf.lookups:{DOMAIN}"]
    assert problem["statement"].startswith(f"the SPF record of {DOMAIN} needs 12 DNS lookups with its includes")
    assert "RFC 7208 §4.6.4" in problem["statement"]
    assert f"spf.ok:{DOMAIN}:{IPV4}" in by_id(report)  # mx matches first: this host passes


def test_an_spf_record_that_does_not_allow_the_host_rfc7208_5(world, doctor) -> None:
    zone = world.good_zone()
    zone.set("TXT", DOMAIN, "v=spf1 ip4:198.51.100.1 -all")
    code, _, _, report = doctor(zone)
    assert code == 1
    found = by_id(report)
    assert found[f"spf.disallowed:{DOMAIN}:{IPV4}"]["statement"] == (
        f"the SPF record of {DOMAIN} does not allow {IPV4} (SPF fail): its mail from this host fails SPF"
    )
    assert found[f"spf.disallowed:{DOMAIN}:{IPV4}"]["fix"].startswith(f"Add ip4:{IPV4} before the all")
    assert found[f"spf.disallowed:{DOMAIN}:{IPV6}"]["fix"].startswith(f"Add ip6:{IPV6} before the all")


def test_a_helo_name_without_spf_is_a_warning_rfc7208_2_3(world, doctor) -> None:
    """RFC 7208 §2.3: receivers check the HELO identity too, and a bounce (null reverse-path) is
    judged by it alone. No record on the HELO name: mail still flows (a warning), with the record
    to publish and where the app lists it."""
    zone = world.good_zone()
    zone.drop("TXT", HOST)
    code, out, _, report = doctor(zone, human=True)
    assert code == 0, out  # a warning alone
    warning = by_id(report)[f"helo-spf.missing:{HOST}"]
    assert warning["severity"] == "warning"
    assert warning["statement"] == (
        f"{HOST}, the name this host gives in HELO, publishes no SPF record: receivers that check the HELO "
        "name (RFC 7208 §2.3) find no answer, and judge this host's bounces (sent with an empty MAIL FROM) "
        "by it alone"
    )
    assert warning["fix"] == (
        f"At your DNS provider, publish TXT {HOST} with the value v=spf1 a -all (only the addresses of "
        f"{HOST} send as it); `sealmail dns-records {DOMAIN}` lists it."
    )
    assert first_lines(out, 1) == [f"WARNING  {HOST}: {warning['statement']}"]
    assert not [i for i in by_id(report) if i.startswith("helo-spf.") and i != f"helo-spf.missing:{HOST}"]
    assert f"spf.ok:{DOMAIN}:{IPV4}" in by_id(report)  # the domain's own record is another matter


@pytest.mark.parametrize(("record", "result"), [("v=spf1 ip4:198.51.100.1 -all", "fail"), ("v=spf1 ~all", "softfail")])
def test_a_helo_spf_record_that_excludes_the_host_rfc7208_2_3(world, doctor, record, result) -> None:
    """The HELO name's record fails (or softfails) the host's own addresses: receivers that check
    HELO see a forgery in every message, bounces most of all. A problem per address, with its fix."""
    zone = world.good_zone()
    zone.set("TXT", HOST, record)
    code, _, _, report = doctor(zone)
    assert code == 1
    found = by_id(report)
    for address, mechanism in ((IPV4, f"ip4:{IPV4}"), (IPV6, f"ip6:{IPV6}")):
        problem = found[f"helo-spf.disallowed:{HOST}:{address}"]
        assert problem["severity"] == "problem"
        assert problem["statement"] == (
            f"the SPF record of {HOST}, the name this host gives in HELO, does not allow {address} "
            f"(SPF {result}): receivers that check the HELO name reject or distrust its mail"
        )
        assert problem["fix"] == (
            f"Add {mechanism} before the all at the end of the SPF record of {HOST} ({record}), "
            "or publish v=spf1 a -all there."
        )
    assert f"spf.ok:{DOMAIN}:{IPV4}" in found


def test_a_blocklist_listing_of_both_addresses_rfc5782_2(world, doctor) -> None:
    """RFC 5782 §2.1 and §2.4: 127.0.0.2 for the reversed IPv4 octets and the IPv6 nibbles is a listing."""
    zone = world.good_zone()
    zone.listed.append((blocklist_name(IPV4, "zen.spamhaus.org"), "127.0.0.2"))
    zone.listed.append((blocklist_name(IPV6, "zen.spamhaus.org"), "127.0.0.2"))
    zone.listed.append((blocklist_name(IPV4, "bl.spamcop.net"), "127.0.0.2"))
    code, out, _, report = doctor(zone, human=True)
    assert code == 1
    found = by_id(report)
    v6 = found[f"blocklist.listed:zen.spamhaus.org:{IPV6}"]
    assert v6["statement"] == f"{IPV6} is listed on Spamhaus ZEN (127.0.0.2: SBL: a known source of spam)"
    assert "https://check.spamhaus.org/" in v6["fix"]
    assert found[f"blocklist.listed:zen.spamhaus.org:{IPV4}"]["severity"] == "problem"
    assert found[f"blocklist.listed:bl.spamcop.net:{IPV4}"]["statement"].startswith(f"{IPV4} is listed on SpamCop")
    assert found[f"blocklist.ok:{IPV4}"]["statement"] == (
        f"{IPV4} is not listed on Barracuda, UCEPROTECT level 1, PSBL, SpamRATS"
    )
    assert [line.split(":")[0] for line in first_lines(out, 3)] == ["PROBLEM  203.0.113.5"] * 2 + ["PROBLEM  2001"]


def test_a_spamhaus_refusal_is_a_warning_not_a_listing(world, doctor) -> None:
    """127.255.255.254: Spamhaus refuses a query through a public resolver; exit 0, warnings alone."""
    zone = world.good_zone()
    zone.listed.append((blocklist_name(IPV4, "zen.spamhaus.org"), "127.255.255.254"))
    code, out, _, report = doctor(zone, human=True)
    assert code == 0, out
    assert report["summary"]["problem"] == 0
    warning = by_id(report)[f"blocklist.refused:zen.spamhaus.org:{IPV4}"]
    assert warning["severity"] == "warning"
    assert "this is not a listing" in warning["statement"]
    assert "public or open resolver" in warning["statement"]
    assert "SEALMAIL_DNS_SERVERS" in warning["fix"]
    assert not any(f["id"].startswith("blocklist.listed") for f in report["findings"])
    assert first_lines(out, 1)[0].startswith(f"WARNING  {IPV4}: Spamhaus ZEN did not answer")


def test_an_mta_sts_policy_that_does_not_match_the_mx_rfc8461_4_1(world, doctor, tmp_path) -> None:
    """RFC 8461 §4.1: under mode enforce a sender delivers only to MX hosts the policy names."""
    port = free_port()
    other = PolicyServer(port, world.certs, "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n")
    try:
        code, _, _, report = doctor(world.good_zone(), SEALMAIL_MTA_STS_PORT=str(port))
    finally:
        other.stop()
    assert code == 1
    problem = by_id(report)[f"mta-sts.mismatch:{DOMAIN}:policy"]
    assert problem["statement"] == (
        f"the MTA-STS policy of {DOMAIN} (mode enforce, mx: mx.elsewhere.test) does not name its MX host "
        f"{HOST}: senders that enforce the policy will not deliver there"
    )
    assert f"https://mta-sts.{DOMAIN}/.well-known/mta-sts.txt" in problem["fix"]


def test_port_25_blocked_rfc5321_4_2(world, doctor) -> None:
    """Nothing answers on the well-known MX's port (closed here, as a provider's block makes it)."""
    closed = free_port()
    code, out, _, report = doctor(world.good_zone(), SEALMAIL_SMTP_RELAY_PORT=str(closed), human=True)
    assert code == 1
    problem = by_id(report)["port25.blocked:outbound"]
    assert problem["statement"].endswith(f"your provider blocks outbound port {closed}")
    assert "mx.big.test" in problem["statement"]
    assert problem["fix"].startswith(f"Ask your hosting provider to open outbound port {closed}")
    assert first_lines(out, 1)[0].startswith(f"PROBLEM  outbound port {closed}: no mail server answered")


@pytest.mark.parametrize(("days", "severity", "code"), [(10, "problem", 1), (18, "warning", 0)])
def test_a_certificate_near_its_end(world, doctor, tmp_path, days, severity, code) -> None:
    """Under 14 days left a problem, under 21 a warning: seen through IMAP STARTTLS (RFC 9051 §6.2.1)
    and implicit TLS (RFC 8314) on a real IMAP listener."""
    certs = world.ca.issue(f"short{days}", (HOST,), days=days)
    update = {"tls_cert_file": certs.cert, "tls_key_file": certs.key, "imaps_port": 0, "imap_port": 0}
    short = ComponentThread("imap", world.settings.model_copy(update=update))
    try:
        got, _, _, report = doctor(
            world.good_zone(),
            SEALMAIL_COMPONENTS="imap",
            SEALMAIL_IMAPS_PORT=str(short.ports["imaps"]),
            SEALMAIL_IMAP_PORT=str(short.ports["imap"]),
        )
    finally:
        short.stop()
    assert got == code
    for key in ("imaps", "imap"):
        finding = by_id(report)[f"certificate.expiring:{key}"]
        assert finding["severity"] == severity
        assert finding["statement"].endswith(f"in {days} days")
        assert finding["fix"].startswith("Renew it: `certbot renew`")
    assert "certificate.ok:mx" not in by_id(report)  # only the components this host runs


def test_the_managesieve_certificate_is_read_after_starttls(world, doctor) -> None:
    """ManageSieve (RFC 5804 §2.2) has STARTTLS only: the doctor reads the greeting's capabilities,
    starts TLS and checks the certificate served on 4190 like any other listener's."""
    sieve = ComponentThread("managesieve", world.settings.model_copy(update={"managesieve_port": 0}))
    try:
        _, _, _, report = doctor(
            world.good_zone(),
            SEALMAIL_COMPONENTS="managesieve",
            SEALMAIL_MANAGESIEVE_PORT=str(sieve.ports["managesieve"]),
        )
    finally:
        sieve.stop()
    finding = by_id(report)["certificate.ok:managesieve"]
    assert finding["severity"] == "ok", finding


def test_a_certificate_for_other_names(world, doctor) -> None:
    """RFC 6125 §6.4: the certificate must name the host clients connect to."""
    certs = world.ca.issue("other", ("other.test", "*.example.net"), days=90)
    update = {"tls_cert_file": certs.cert, "tls_key_file": certs.key, "mx_port": 0}
    wrong = ComponentThread("mx", world.settings.model_copy(update=update))
    try:
        code, _, _, report = doctor(world.good_zone(), SEALMAIL_MX_PORT=str(wrong.ports["mx"]))
    finally:
        wrong.stop()
    assert code == 1
    problem = by_id(report)["certificate.names:mx"]
    assert problem["statement"].startswith(f"the certificate served here does not cover {HOST}")


def test_lookups_that_time_out_are_could_not_check_and_the_run_stays_short(world, doctor) -> None:
    """A blocklist whose servers never answer: "could not check", never a pass or a listing, and the
    whole run still takes seconds (each question has doctor_timeout, here 1 s)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the questions, answers none
    silent.bind(("127.0.0.1", 0))
    try:
        zone = world.good_zone()
        zone.forwards.append(("spamcop.net", f"127.0.0.1#{silent.getsockname()[1]}"))
        began = time.monotonic()
        code, out, _, report = doctor(zone, SEALMAIL_DOCTOR_TIMEOUT="1")
        took = time.monotonic() - began
    finally:
        silent.close()
    assert code == 0, out
    warning = by_id(report)[f"blocklist.unchecked:bl.spamcop.net:{IPV4}"]
    assert warning["statement"].startswith(f"could not check SpamCop for {IPV4}: no answer within 1 s")
    assert not any(f["id"].startswith("blocklist.listed") for f in report["findings"])
    assert "SpamCop" not in by_id(report)[f"blocklist.ok:{IPV4}"]["statement"]
    assert report["seconds"] < 5
    assert took < 20  # with the start of Python and dnsmasq


def test_addresses_from_dns_when_the_settings_have_none(world, doctor) -> None:
    """Without SEALMAIL_PUBLIC_IPV4/IPV6 the host name's A/AAAA records are the addresses, and the
    report says so; an address no one can reach (127.0.0.1 here) is a warning."""
    code, out, _, report = doctor(world.good_zone(), SEALMAIL_PUBLIC_IPV4="", SEALMAIL_PUBLIC_IPV6="", human=True)
    assert code == 0, out  # a warning alone
    assert report["addresses_from"] == "dns"
    assert set(report["addresses"]) == {IPV4, IPV6, "127.0.0.1"}
    assert f"(from the A/AAAA records of {HOST}" in out
    warning = by_id(report)["addresses.private:127.0.0.1"]
    assert warning["statement"] == "127.0.0.1 is not an internet address: other mail servers cannot reach it"


def test_one_domain_and_an_unknown_one(world, doctor) -> None:
    code, _, _, report = doctor(world.good_zone(), "--domain", DOMAIN.upper())
    assert (code, report["domains"]) == (0, [DOMAIN])
    code, _, err, report = doctor(world.good_zone(), "--domain", "absent.test")
    assert (code, report) == (1, None)
    assert err == "sealmail: error: domain absent.test is not hosted here\n"
