"""Checks of one hosted domain: what DNS publishes for it against what this host needs and does.

- the records ``services.dnsrecords`` lists, judged live by ``services.dnscheck`` (MX, DKIM — the
  published key must be the key this host signs with —, DMARC, the MTA-STS id, TLS-RPT, the
  mail host's addresses, client discovery);
- SPF by evaluation (``spfeval``: pyspf through ``mailauth.spf``): each of the host's addresses
  allowed, and no more than 10 DNS-querying terms with nested includes (RFC 7208 §4.6.4);
- MTA-STS by fetching the policy over HTTPS (``mailauth.mtasts``) and matching its ``mx:`` lines
  against the domain's MX records (RFC 8461 §4.1).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sealmail.doctor import spfeval
from sealmail.doctor.findings import Finding, ok, problem, unchecked, warning
from sealmail.mailauth.mtasts import PolicyUnavailable, fetch_policy, parse_txt
from sealmail.services.dnscheck import DnsLookupError, RecordCheck, check_records

if TYPE_CHECKING:
    import httpx

    from sealmail.mailauth.dnsview import DnsView
    from sealmail.services.dkim import DkimKey
    from sealmail.services.dnscheck import Lookup
    from sealmail.services.dnsrecords import DnsRecord

SPF_LOOKUP_LIMIT = spfeval.LOOKUP_LIMIT


# TXT records by the start of their name: the check each belongs to, and whether a record that is
# not right is a problem (else a warning).
_TXT_KINDS = (("_dmarc.", "dmarc", True), ("_mta-sts.", "mta-sts", False), ("_smtp._tls.", "tls-rpt", False))


def _kind(record: DnsRecord, helo: str) -> tuple[str, bool] | None:
    """The check a record belongs to and whether it is needed (not right: a problem, else a
    warning). SPF is judged by evaluation instead (None)."""
    name = record.name
    if record.type == "TXT" and record.value.lower().startswith("v=spf1"):
        return None
    if record.type == "TXT" and "._domainkey." in name:
        return "dkim", True
    if record.type == "TXT":
        return next(
            ((kind, needed) for start, kind, needed in _TXT_KINDS if name.startswith(start)), ("discovery", False)
        )
    if record.type == "MX":
        return "mx", True
    if record.type in ("A", "AAAA"):
        return "address", name == helo  # the mail host's own: needed; the web admin's: a warning
    return ("mta-sts", False) if name.startswith("mta-sts.") else ("discovery", False)


def _value(record: DnsRecord) -> str:
    return f"{record.priority} {record.value}" if record.priority is not None else record.value


def _key(kind: str, record: DnsRecord, domain: str) -> str:
    """The subject part of a record finding's id: the domain for its one-per-domain records, the
    selector for DKIM, else the record's name and type."""
    if kind == "dkim":
        return f"{domain}:{record.name.split('._domainkey.')[0]}"
    if kind in ("mx", "dmarc", "tls-rpt") or (kind == "mta-sts" and record.type == "TXT"):
        return domain
    return f"{record.name}:{record.type}"


def _record_finding(check: RecordCheck, domain: str, kind: str, needed: bool) -> Finding:
    record = check.record
    key = _key(kind, record, domain)
    said = f"{record.type} {record.name}"
    if check.status == "pass":
        return ok(kind, key, domain, f"{said} is published as needed ({record.purpose})")
    if kind == "dkim":
        algorithm = record.purpose.removeprefix("DKIM ").removesuffix(" public key")
        statement = (
            f"the DKIM {algorithm} key published at {record.name} is not the key this host signs with: "
            "receivers find its signatures broken"
            if check.status == "wrong"
            else f"no DKIM {algorithm} key is published at {record.name}: receivers cannot check its signatures"
        )
        fix = (
            f"At your DNS provider, set TXT {record.name} to the value `sealmail dns-records {domain}` prints "
            f"(the web admin's DNS page of {domain} shows it too, with a copy button)."
        )
    elif check.status == "missing":
        statement = f"{said} is missing ({record.purpose})"
        fix = f"At your DNS provider, publish {said} with the value {_value(record)}"
    else:
        found = ", ".join(check.found)
        statement = f"{said} is not as needed ({record.purpose}): {check.note}" + (f"; found {found}" if found else "")
        fix = f"At your DNS provider, change {said} to {_value(record)}"
    make = problem if needed else warning
    return make(kind, check.status, key, domain, statement, fix)


async def check_records_of(lookup: Lookup, domain: str, records: list[DnsRecord], helo: str) -> list[Finding]:
    judged = [(r, k) for r in records if (k := _kind(r, helo)) is not None]
    checks = await check_records(lookup, [r for r, _ in judged])
    findings: list[Finding] = []
    discovery_ok = 0
    unanswered: list[RecordCheck] = []
    for check, (_, (kind, needed)) in zip(checks, judged, strict=True):
        if kind == "discovery" and check.status == "pass":
            discovery_ok += 1  # one line for all of them: a dozen records that pass say little each
        elif check.status == "error":
            unanswered.append(check)  # one line too: DNS that does not answer fails every record alike
        else:
            findings.append(_record_finding(check, domain, kind, needed))
    if unanswered:
        names = [f"{c.record.type} {c.record.name}" for c in unanswered]
        listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        reason = unanswered[0].note.removeprefix("could not ask DNS: ")
        findings.append(unchecked("records", domain, domain, listed, reason))
    if discovery_ok:
        findings.append(
            ok(
                "discovery",
                domain,
                domain,
                f"{discovery_ok} client discovery records published as needed (SRV, autoconfig, autodiscover)",
            )
        )
    return findings


def check_keys(keys: list[DkimKey], domain: str) -> list[Finding]:
    """A key this host lacks is a signature it never makes."""
    return [
        problem(
            "dkim",
            "nokey",
            f"{domain}:{key.selector}",
            domain,
            f"this host has no DKIM {key.algorithm} key for {domain}: it signs nothing with selector {key.selector}",
            "Run `sealmail domain share-keys` (another host made the keys) or add the domain again "
            "with `sealmail domain add`; then publish the records `sealmail dns-records` prints.",
        )
        for key in keys
        if not key.path.exists()
    ]


def check_spf(view: DnsView, domain: str, addresses: list[str], helo: str, querytime: float) -> list[Finding]:
    """SPF by evaluation, the way receivers see it (blocking: pyspf asks DNS synchronously)."""
    example = f"v=spf1 mx -all (when {helo} is the MX of {domain})"
    found = spfeval.evaluate(view, domain, addresses, mail_from=f"postmaster@{domain}", helo=helo, querytime=querytime)
    if found.temperror:
        return [unchecked("spf", domain, domain, f"the SPF record of {domain}", found.temperror)]
    if found.permerror:
        return [
            problem(
                "spf",
                "invalid",
                domain,
                domain,
                f"the SPF record of {domain} is broken ({found.permerror}): receivers treat it as a permanent error",
                f"Publish exactly one TXT record starting with v=spf1 at {domain}, such as {example}.",
            )
        ]
    if found.record is None:
        return [
            problem(
                "spf",
                "missing",
                domain,
                domain,
                f"{domain} publishes no SPF record: receivers cannot tell its mail from forgeries",
                f"At your DNS provider, publish TXT {domain} with the value {example}.",
            )
        ]
    findings: list[Finding] = []
    if found.lookups > SPF_LOOKUP_LIMIT:
        findings.append(
            problem(
                "spf",
                "lookups",
                domain,
                domain,
                f"the SPF record of {domain} needs {found.lookups} DNS lookups with its includes; receivers stop "
                f"at {SPF_LOOKUP_LIMIT} (RFC 7208 §4.6.4) and call it a permanent error",
                "Remove the include: of services that no longer send for the domain, or list their "
                f"addresses with ip4:/ip6:, until at most {SPF_LOOKUP_LIMIT} remain; {example} needs one.",
            )
        )
    for address, result in found.results.items():
        key = f"{domain}:{address}"
        if result.result == "pass":
            findings.append(ok("spf", key, domain, f"the SPF record of {domain} allows {address}"))
        elif result.result == "temperror":
            findings.append(unchecked("spf", key, domain, f"SPF of {domain} for {address}", result.explanation))
        elif result.result == "permerror":
            if not findings or findings[0].severity != "problem":  # once per record, not per address
                findings.insert(
                    0,
                    problem(
                        "spf",
                        "invalid",
                        domain,
                        domain,
                        f"the SPF record of {domain} ends in a permanent error ({result.explanation})",
                        f"Correct the record ({found.record}), such as {example}.",
                    ),
                )
        else:
            findings.append(
                problem(
                    "spf",
                    "disallowed",
                    key,
                    domain,
                    f"the SPF record of {domain} does not allow {address} (SPF {result.result}): "
                    "its mail from this host fails SPF",
                    f"Add {spfeval.mechanism(address)} before the all at the end of the SPF record of {domain} "
                    f"({found.record}), or use {example}.",
                )
            )
    return findings


async def check_mta_sts(  # noqa: PLR0911 - one finding for each way a policy fails
    lookup: Lookup, client: httpx.AsyncClient, domain: str, port: int, helo: str
) -> list[Finding]:
    """The policy a domain publishes, fetched as a sender would, against its MX records."""
    try:
        policy_id = parse_txt(await lookup(f"_mta-sts.{domain}", "TXT"))
        if policy_id is None:
            return []  # no policy published: the _mta-sts record's own finding says so
        exchanges = [v.split()[-1].rstrip(".").lower() for v in await lookup(domain, "MX")]
        host = f"mta-sts.{domain}"
        v4, v6 = await asyncio.gather(lookup(host, "A"), lookup(host, "AAAA"))
    except DnsLookupError as exc:
        return [unchecked("mta-sts", f"{domain}:policy", domain, f"the MTA-STS policy of {domain}", str(exc))]
    url = f"https://{host}/.well-known/mta-sts.txt"
    serve_here = (
        f"{host} must lead to this host (CNAME {host} → {helo}) and the web component's certificate must "
        "cover it (`sealmail host-names` lists every name the certificate needs)."
    )
    if not v4 + v6:
        return [
            problem(
                "mta-sts",
                "unfetchable",
                f"{domain}:policy",
                domain,
                f"{domain} announces an MTA-STS policy, but {host} has no address: senders cannot fetch it",
                serve_here,
            )
        ]
    try:
        policy = await fetch_policy(client, (v4 + v6)[0], domain, port)
    except PolicyUnavailable as exc:
        return [
            problem(
                "mta-sts",
                "unfetchable",
                f"{domain}:policy",
                domain,
                f"the MTA-STS policy of {domain} cannot be fetched from {url}: {exc}",
                serve_here,
            )
        ]
    named = ", ".join(policy.mx) or "none"
    unmatched = [h for h in exchanges if h and not policy.matches(h)]
    if policy.mode != "none" and unmatched:
        make = problem if policy.mode == "enforce" else warning
        return [
            make(
                "mta-sts",
                "mismatch",
                f"{domain}:policy",
                domain,
                f"the MTA-STS policy of {domain} (mode {policy.mode}, mx: {named}) does not name its MX host "
                f"{', '.join(unmatched)}: senders that enforce the policy will not deliver there",
                f"Make the policy at {url} name every MX host in its mx: lines, or point the MX of {domain} at "
                f"{helo}, the host this server's policy names.",
            )
        ]
    if policy.mode == "none":
        return [
            warning(
                "mta-sts",
                "off",
                f"{domain}:policy",
                domain,
                f"the MTA-STS policy of {domain} is mode none: senders do not require TLS to its MX",
                "Set SEALMAIL_MTA_STS_MODE=enforce (or testing, to try it first).",
            )
        ]
    return [
        ok(
            "mta-sts",
            f"{domain}:policy",
            domain,
            f"the MTA-STS policy of {domain} (mode {policy.mode}, fetched from {url}) names every MX host ({named})",
        )
    ]
