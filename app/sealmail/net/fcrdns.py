"""Forward-confirmed reverse DNS (FCrDNS, the "iprev" of RFC 8601 §3).

The PTR names of an address (RFC 1035 §3.5), and which of them have A or AAAA records that lead
back to the address. Only such a name says anything about a host: a PTR alone is whatever the
owner of the address block chose to write.

``confirmed_name`` is the MX's question about a client (the first confirmed name, None when DNS
does not say). ``reverse_names`` is the deliverability check's question about this host: every
PTR name and which of them are confirmed, raising ``ReverseDnsUnanswered`` when DNS did not
answer, so "no PTR" is never mistaken for "could not ask".
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

log = logging.getLogger("sealmail.net")
MAX_NAMES = 10  # RFC 8601 §3: a verifier may stop after some PTR names (a client could publish thousands)
_NOT_ANSWERED = (dns.exception.DNSException, OSError, ValueError)
_NO_SUCH_RECORD = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)


class ReverseDnsUnanswered(Exception):
    """DNS did not answer (timeout, SERVFAIL, no server): whether a record exists is unknown."""


@dataclass(frozen=True, slots=True)
class ReverseNames:
    address: str
    names: tuple[str, ...]  # the PTR names (lower case, no final dot), at most MAX_NAMES
    confirmed: tuple[str, ...]  # those whose A/AAAA records include the address


def _name(rdata: object) -> str:
    return str(rdata.target.to_text(omit_final_dot=True)).lower()  # type: ignore[attr-defined]


def _leads_back(answer: dns.resolver.Answer, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ipaddress.ip_address(r.address) == address for r in answer)


async def confirmed_name(resolver: dns.asyncresolver.Resolver, ip: str) -> str | None:
    """The first PTR name of ``ip`` that resolves back to it, lower-case without the final dot;
    None when there is none or DNS did not answer (a temporary failure proves nothing either way)."""
    try:
        address = ipaddress.ip_address(ip)
        answer = await resolver.resolve_address(str(address))
    except _NOT_ANSWERED:
        return None
    rdtype = "A" if address.version == 4 else "AAAA"
    for rdata in list(answer)[:MAX_NAMES]:
        name = _name(rdata)
        try:
            forward = await resolver.resolve(name, rdtype)
        except _NOT_ANSWERED:
            continue
        if _leads_back(forward, address):
            return name
    return None


async def reverse_names(resolver: dns.asyncresolver.Resolver, ip: str) -> ReverseNames:
    """Every PTR name of ``ip`` (no PTR: no names) and which lead back to it. Raises
    ``ReverseDnsUnanswered`` when the PTR question, or a name's A/AAAA question, got no answer."""
    address = ipaddress.ip_address(ip)
    try:
        answer = await resolver.resolve_address(str(address))
        names = tuple(dict.fromkeys(_name(r) for r in list(answer)[:MAX_NAMES]))
    except _NO_SUCH_RECORD:
        names = ()
    except dns.exception.DNSException as exc:
        raise ReverseDnsUnanswered(f"no answer for the PTR of {address}: {exc or type(exc).__name__}") from None
    rdtype = "A" if address.version == 4 else "AAAA"
    confirmed = []
    for name in names:
        try:
            forward = await resolver.resolve(name, rdtype)
        except _NO_SUCH_RECORD:
            continue
        except dns.exception.DNSException as exc:
            raise ReverseDnsUnanswered(f"no answer for the {rdtype} of {name}: {exc or type(exc).__name__}") from None
        if _leads_back(forward, address):
            confirmed.append(name)
    return ReverseNames(str(address), names, tuple(confirmed))
