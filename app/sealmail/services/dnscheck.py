"""Live check of the DNS records a domain needs (``dnsrecords.records_for``): pass, missing or wrong.

The resolver is passed in (``Lookup``: name and type to the answers' text forms), so the rules here
are tested with a dict and the web admin and the API ask the configured resolver. Rules, per record:
- MX, CNAME, SRV: the expected target (and port) must be among the answers;
- SPF: exactly one ``v=spf1`` record (RFC 7208 §4.5) with every mechanism we publish;
- DKIM: a record with the same public key (``p=``);
- DMARC, TLS-RPT: one record of its kind (the policy and report address are the owner's choice);
- MTA-STS: the same policy id (a different id means the policy file and DNS disagree);
- a CNAME may be replaced by A/AAAA records with the same addresses as the target.

``resolver_lookup`` makes a ``Lookup`` of a dnspython resolver (the web admin's DNS page and the
deliverability checks ask the configured one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import dns.exception
import dns.resolver

from sealmail.services.dnsrecords import DnsRecord

if TYPE_CHECKING:
    import dns.asyncresolver

Status = Literal["pass", "missing", "wrong", "error"]
Lookup = Callable[[str, str], Awaitable[list[str]]]


class DnsLookupError(Exception):
    """The resolver could not answer (timeout, SERVFAIL): the record is neither missing nor wrong."""


def resolver_lookup(resolver: dns.asyncresolver.Resolver) -> Lookup:
    """A ``Lookup`` asking ``resolver``: no such name or no such record is ``[]``, no answer
    (timeout, SERVFAIL, no server) raises ``DnsLookupError``; TXT strings of a record are joined,
    other types are in their presentation form ("10 mail.example.com.")."""

    async def lookup(name: str, rdtype: str) -> list[str]:
        try:
            answer = await resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.LifetimeTimeout:
            raise DnsLookupError(f"no answer within {resolver.lifetime:g} s") from None
        except dns.exception.DNSException as exc:
            raise DnsLookupError(str(exc) or type(exc).__name__) from None
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return [r.to_text() for r in answer]

    return lookup


@dataclass(slots=True)
class RecordCheck:
    record: DnsRecord
    status: Status
    found: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {**self.record.as_dict(), "status": self.status, "found": self.found, "note": self.note}


def _host(text: str) -> str:
    return text.strip().rstrip(".").lower()


def _tags(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key.strip().lower()] = "".join(value.split())
    return out


def _txt_kind(value: str) -> str:
    head = value.strip().lower()
    for prefix, kind in (
        ("v=spf1", "spf"),
        ("v=dkim1", "dkim"),
        ("v=dmarc1", "dmarc"),
        ("v=stsv1", "sts"),
        ("v=tlsrptv1", "tlsrpt"),
    ):
        if head.startswith(prefix):
            return kind
    return "dkim" if "p=" in head and "k=" in head else "other"


def judge_txt(expected: str, found: list[str]) -> tuple[Status, str]:  # noqa: PLR0911 - one verdict per record kind
    kind = _txt_kind(expected)
    same_kind = [v for v in found if _txt_kind(v) == kind]
    if not same_kind:
        return "missing", ""
    if kind == "spf":
        if len(same_kind) > 1:
            return "wrong", "more than one SPF record: receivers treat that as an error (RFC 7208 §4.5)"
        terms = {t.lstrip("+").lower() for t in same_kind[0].split()[1:]}
        wanted = {t.lstrip("+").lower() for t in expected.split()[1:] if not t.endswith("all")}
        if wanted <= terms:
            return "pass", ""
        return "wrong", "the SPF record does not list this server (" + ", ".join(sorted(wanted - terms)) + ")"
    if kind == "dkim":
        key = _tags(expected).get("p")
        if any(_tags(v).get("p") == key for v in same_kind):
            return "pass", ""
        return "wrong", "a different public key is published"
    if kind == "sts":
        policy_id = _tags(expected).get("id")
        if any(_tags(v).get("id") == policy_id for v in same_kind):
            return "pass", ""
        return "wrong", "the policy id differs from the policy this server serves"
    if len(same_kind) > 1:
        return "wrong", "more than one record of this kind"
    return "pass", ""


def judge_targets(record: DnsRecord, found: list[str]) -> tuple[Status, str]:
    if not found:
        return "missing", ""
    if record.type == "MX":
        hosts = {_host(v.split()[-1]) for v in found}
        ok = _host(record.value) in hosts
    elif record.type == "SRV":
        _, _, port, target = record.value.split()
        ok = any(v.split()[2:4] and v.split()[2] == port and _host(v.split()[3]) == _host(target) for v in found)
    else:
        ok = _host(record.value) in {_host(v) for v in found}
    return ("pass", "") if ok else ("wrong", "points elsewhere")


async def check_record(lookup: Lookup, record: DnsRecord) -> RecordCheck:
    try:
        found = await lookup(record.name, record.type)
        if record.type == "TXT":
            status, note = judge_txt(record.value, found)
            relevant = [v for v in found if _txt_kind(v) == _txt_kind(record.value)] or found
            return RecordCheck(record, status, relevant, note)
        if record.type == "CNAME" and not found:
            # An A/AAAA record with the target's addresses serves as well as the CNAME.
            addresses = set(await lookup(record.name, "A")) | set(await lookup(record.name, "AAAA"))
            if addresses:
                target = set(await lookup(_host(record.value), "A")) | set(await lookup(_host(record.value), "AAAA"))
                if target and addresses <= target:
                    return RecordCheck(record, "pass", sorted(addresses), "address records instead of a CNAME")
                return RecordCheck(record, "wrong", sorted(addresses), "the addresses differ from the mail host's")
        status, note = judge_targets(record, found)
        return RecordCheck(record, status, found, note)
    except DnsLookupError as exc:
        return RecordCheck(record, "error", [], f"could not ask DNS: {exc}")


async def check_records(lookup: Lookup, records: list[DnsRecord]) -> list[RecordCheck]:
    return list(await asyncio.gather(*(check_record(lookup, r) for r in records)))
