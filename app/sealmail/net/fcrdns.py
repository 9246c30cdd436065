"""A client's forward-confirmed reverse DNS name (FCrDNS, the "iprev" of RFC 8601 §3).

The PTR names of the address (RFC 1035 §3.5), and the first of them whose own A or AAAA records
lead back to the address. Only such a name says anything about the client: a PTR alone is
whatever the owner of the address block chose to write.
"""

from __future__ import annotations

import ipaddress
import logging

import dns.asyncresolver
import dns.exception
import dns.resolver

log = logging.getLogger("sealmail.net")
MAX_NAMES = 10  # RFC 8601 §3: a verifier may stop after some PTR names (a client could publish thousands)
_NOT_ANSWERED = (dns.exception.DNSException, OSError, ValueError)


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
        name = str(rdata.target.to_text(omit_final_dot=True)).lower()
        try:
            forward = await resolver.resolve(name, rdtype)
        except _NOT_ANSWERED:
            continue
        if any(ipaddress.ip_address(r.address) == address for r in forward):
            return name
    return None
