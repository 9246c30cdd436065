"""Checks of the host itself: its public addresses, their reverse DNS, the SPF record of its HELO
name, and the blocklists.

Receivers judge a sending host first by its address: a PTR (reverse DNS) that names the host and
leads back to the address (forward-confirmed, RFC 8601 §3 "iprev"), a name that matches what it
says in HELO, that name's own SPF record allowing the address (RFC 7208 §2.3: checked beside the
MAIL FROM, and alone for bounces, whose MAIL FROM is empty), and no listing on the blocklists they
use. Only the addresses mail leaves from are judged: those of the families ``SEALMAIL_OUTBOUND_IP_FAMILY`` sends over, and a chosen source
address (``SEALMAIL_OUTBOUND_SOURCE_IPV4``/``…_IPV6``) in place of the host's others of its family.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Literal

from sealmail.doctor import blocklists, spfeval
from sealmail.doctor.findings import Finding, ok, problem, unchecked, warning
from sealmail.net import outbound
from sealmail.net.fcrdns import ReverseDnsUnanswered, reverse_names
from sealmail.services.dnscheck import DnsLookupError
from sealmail.services.dnsrecords import HELO_SPF

if TYPE_CHECKING:
    import dns.asyncresolver

    from sealmail.mailauth.dnsview import DnsView
    from sealmail.services.dnscheck import Lookup
    from sealmail.settings import Settings

# Addresses no one on the internet can reach this host at (RFC 1918, RFC 6598, RFC 4193 and the
# like). Documentation ranges are not among them: examples and tests use those as public ones.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10")
)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return False
    return not any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)


async def public_addresses(
    settings: Settings, lookup: Lookup
) -> tuple[list[str], Literal["settings", "dns", "none"], list[Finding]]:
    """The public addresses this host sends mail from: the settings' (SEALMAIL_PUBLIC_IPV4/IPV6)
    when either is set, else the A and AAAA records of the host name; of those, the families it
    sends over, with a chosen public source address in place of the others of its family. With
    where they came from, and findings."""
    host = settings.mail_hostname
    if settings.public_ipv4 or settings.public_ipv6:
        found = [a for a in (settings.public_ipv4, settings.public_ipv6) if a]
        source: Literal["settings", "dns", "none"] = "settings"
    else:
        try:
            answers = await asyncio.gather(lookup(host, "A"), lookup(host, "AAAA"))
        except DnsLookupError as exc:
            return [], "none", [unchecked("addresses", host, host, f"the addresses of {host}", str(exc))]
        found = [a for answer in answers for a in answer]
        source = "dns" if found else "none"
    if not found:
        fix = (
            f"Set SEALMAIL_PUBLIC_IPV4 (and SEALMAIL_PUBLIC_IPV6, if the host has one) in "
            f"/etc/sealmail/sealmail.env, and publish them as the A and AAAA records of {host}."
        )
        return [], "none", [problem("addresses", "none", host, host, f"no public address of {host} is known", fix)]
    sending, findings = _sending(settings, found)
    if not sending:
        only = " and ".join(outbound.family_name(v) for v in outbound.families(settings))
        fix = (
            f"Set SEALMAIL_OUTBOUND_IP_FAMILY to a family this host has an address of, or publish its {only} "
            f"address (SEALMAIL_PUBLIC_IPV4/IPV6 and the A/AAAA records of {host})."
        )
        statement = f"this host sends over {only} only, and no public {only} address of {host} is known"
        return [], source, [*findings, problem("addresses", "none-sending", host, host, statement, fix)]
    for address in sending:
        if not _public(address):
            findings.append(
                warning(
                    "addresses",
                    "private",
                    address,
                    address,
                    f"{address} is not an internet address: other mail servers cannot reach it",
                    "Set SEALMAIL_PUBLIC_IPV4/SEALMAIL_PUBLIC_IPV6 to the addresses the internet sees "
                    "(your VPS provider's panel shows them), and publish those in DNS.",
                )
            )
    if not any(f.severity == "warning" for f in findings):
        said = "the settings" if source == "settings" else f"the A/AAAA records of {host}"
        findings.append(ok("addresses", host, host, f"public addresses {', '.join(found)} (from {said})"))
    return sending, source, findings


def _sending(settings: Settings, found: list[str]) -> tuple[list[str], list[Finding]]:
    """Of the host's addresses, those mail leaves from, and a line for each one it does not."""
    findings: list[Finding] = []
    kept = outbound.allowed(settings, found)
    for address in found:
        if address not in kept:
            findings.append(
                ok(
                    "addresses",
                    address,
                    address,
                    f"{address} is not checked: this host sends no mail over "
                    f"{outbound.family_name(outbound.version_of(address))} "
                    f"(SEALMAIL_OUTBOUND_IP_FAMILY={settings.outbound_ip_family})",
                )
            )
    sending: list[str] = []
    for version in outbound.families(settings):
        chosen = settings.outbound_source_ipv4 if version == 4 else settings.outbound_source_ipv6
        own = [a for a in kept if outbound.version_of(a) == version]
        if chosen is not None and _public(chosen):
            # Receivers see the source address, not the host's others of that family.
            sending.append(chosen)
            findings.append(
                ok(
                    "addresses",
                    chosen,
                    chosen,
                    f"mail leaves from {chosen} (SEALMAIL_OUTBOUND_SOURCE_IPV{version}): its reverse DNS "
                    "and listings are checked",
                )
            )
        else:
            sending += own
    return sending, findings


async def check_reverse(resolver: dns.asyncresolver.Resolver, address: str, helo: str) -> Finding:
    """The PTR of ``address`` names ``helo`` and ``helo`` leads back to it."""
    family = "A" if ipaddress.ip_address(address).version == 4 else "AAAA"
    try:
        found = await reverse_names(resolver, address)
    except ReverseDnsUnanswered as exc:
        return unchecked("ptr", address, address, f"the reverse DNS of {address}", str(exc))
    ask = f"Ask your VPS provider to set the PTR (reverse DNS) of {address} to {helo}; most have it in their panel."
    if not found.names:
        return problem(
            "ptr",
            "missing",
            address,
            address,
            f"{address} has no PTR record (reverse DNS): many receivers refuse mail from such an address",
            ask,
        )
    if helo not in found.names:
        names = ", ".join(found.names)
        return problem(
            "ptr",
            "mismatch",
            address,
            address,
            f"the PTR of {address} is {names}, not {helo}, the name this host gives in HELO",
            ask,
        )
    if helo not in found.confirmed:
        return problem(
            "ptr",
            "unconfirmed",
            address,
            address,
            f"the PTR of {address} is {helo}, but {helo} has no {family} record {address}: "
            "the name is not forward-confirmed",
            f"At your DNS provider, publish the {family} record {helo} → {address}.",
        )
    return ok("ptr", address, address, f"the PTR of {address} is {helo}, which leads back to it (forward-confirmed)")


def check_helo_spf(view: DnsView, helo: str, addresses: list[str], zone: str | None, querytime: float) -> list[Finding]:
    """The SPF record of the HELO name evaluated for each sending address as the HELO identity
    (RFC 7208 §2.3), by the code that judges a domain's (blocking). ``zone``: the hosted domain
    whose ``sealmail dns-records`` lists the record, if one does."""
    said = f"{helo}, the name this host gives in HELO"
    found = spfeval.evaluate(view, helo, addresses, mail_from="", helo=helo, querytime=querytime)
    if found.temperror:
        return [unchecked("helo-spf", helo, helo, f"the SPF record of {helo}", found.temperror)]
    listed = f"; `sealmail dns-records {zone}` lists it." if zone else "."
    publish = (
        f"At your DNS provider, publish TXT {helo} with the value {HELO_SPF} (only the addresses of {helo} "
        f"send as it){listed}"
    )
    if found.permerror:
        return [_helo_invalid(helo, said, found.permerror)]
    if found.record is None:
        statement = (
            f"{said}, publishes no SPF record: receivers that check the HELO name (RFC 7208 §2.3) find no "
            "answer, and judge this host's bounces (sent with an empty MAIL FROM) by it alone"
        )
        return [warning("helo-spf", "missing", helo, helo, statement, publish)]
    findings: list[Finding] = []
    if found.lookups > spfeval.LOOKUP_LIMIT:
        findings.append(
            problem(
                "helo-spf",
                "lookups",
                helo,
                helo,
                f"the SPF record of {said}, needs {found.lookups} DNS lookups with its includes; receivers stop "
                f"at {spfeval.LOOKUP_LIMIT} (RFC 7208 §4.6.4) and call it a permanent error",
                f"Publish {HELO_SPF} at {helo}: it needs one.",
            )
        )
    for address, result in found.results.items():
        key = f"{helo}:{address}"
        if result.result == "pass":
            findings.append(ok("helo-spf", key, helo, f"the SPF record of {said}, allows {address}"))
        elif result.result == "temperror":
            findings.append(unchecked("helo-spf", key, helo, f"SPF of {helo} for {address}", result.explanation))
        elif result.result == "permerror":
            return [_helo_invalid(helo, said, result.explanation)]
        elif result.result in ("neutral", "none"):
            # RFC 7208 §8.2: a neutral result is treated exactly like none.
            findings.append(
                warning(
                    "helo-spf",
                    "neutral",
                    key,
                    helo,
                    f"the SPF record of {said}, neither allows nor forbids {address} (SPF {result.result}): "
                    "receivers read it as no record",
                    f"Add {spfeval.mechanism(address)} before the all at the end of the SPF record of {helo} "
                    f"({found.record}), or publish {HELO_SPF} there.",
                )
            )
        else:
            findings.append(
                problem(
                    "helo-spf",
                    "disallowed",
                    key,
                    helo,
                    f"the SPF record of {said}, does not allow {address} (SPF {result.result}): receivers that "
                    "check the HELO name reject or distrust its mail",
                    f"Add {spfeval.mechanism(address)} before the all at the end of the SPF record of {helo} "
                    f"({found.record}), or publish {HELO_SPF} there.",
                )
            )
    return findings


def _helo_invalid(helo: str, said: str, why: str) -> Finding:
    return problem(
        "helo-spf",
        "invalid",
        helo,
        helo,
        f"the SPF record of {said}, is broken ({why}): receivers that check the HELO name treat it as a "
        "permanent error",
        f"Publish exactly one TXT record starting with v=spf1 at {helo}, such as {HELO_SPF}.",
    )


async def check_blocklists(lookup: Lookup, addresses: list[str]) -> list[Finding]:
    """Every address on every list that can list it, side by side."""
    asked = [
        (address, blocklist, name)
        for address in addresses
        for blocklist in blocklists.BLOCKLISTS
        if (name := blocklists.query_name(blocklist, address)) is not None
    ]

    async def ask(name: str) -> list[str] | DnsLookupError:
        try:
            return await lookup(name, "A")
        except DnsLookupError as exc:
            return exc

    answers = await asyncio.gather(*(ask(name) for _, _, name in asked))
    findings: list[Finding] = []
    clean: dict[str, list[str]] = {}
    for (address, blocklist, _), answer in zip(asked, answers, strict=True):
        key = f"{blocklist.zone}:{address}"
        if isinstance(answer, DnsLookupError):
            findings.append(unchecked("blocklist", key, address, f"{blocklist.name} for {address}", str(answer)))
            continue
        verdict = blocklists.judge(blocklist, answer)
        codes = "; ".join(f"{code}: {meaning}" for code, meaning in verdict.codes)
        if verdict.outcome == "clean":
            clean.setdefault(address, []).append(blocklist.name)
        elif verdict.outcome == "listed":
            findings.append(
                problem(
                    "blocklist",
                    "listed",
                    key,
                    address,
                    f"{address} is listed on {blocklist.name} ({codes})",
                    f"Find and stop what sent the mail first (an open relay, a stolen password, a compromised "
                    f"program), then ask {blocklist.name} for removal at {blocklist.removal}.",
                )
            )
        elif verdict.outcome == "refused":
            findings.append(
                warning(
                    "blocklist",
                    "refused",
                    key,
                    address,
                    f"{blocklist.name} did not answer about {address} ({codes}); this is not a listing",
                    f"{blocklist.name} refuses public and busy shared resolvers: point SEALMAIL_DNS_SERVERS at a "
                    "resolver of your own (for example unbound on this host, 127.0.0.1), then check again.",
                )
            )
        else:
            findings.append(
                warning(
                    "blocklist",
                    "unexpected",
                    key,
                    address,
                    f"{blocklist.name} gave an unexpected answer about {address} ({codes}); not read as a listing",
                    f"Look {address} up at {blocklist.removal}; if the resolver makes up answers for names that "
                    "do not exist, use another one (SEALMAIL_DNS_SERVERS).",
                )
            )
    for address, names in clean.items():
        findings.append(ok("blocklist", address, address, f"{address} is not listed on {', '.join(names)}"))
    return findings
