"""The DNS questions sender authentication asks, synchronously (the checks run in a worker thread).

``ResolverDns`` asks real servers through dnspython; ``MemoryDns`` answers from a dict for unit
tests. Both raise ``DnsTempError`` for SERVFAIL and timeouts, which the checks report as
``temperror`` instead of treating as "no record".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

import dns.exception
import dns.nameserver
import dns.resolver


class DnsTempError(Exception):
    pass


class DnsView(Protocol):
    def records(self, name: str, rdtype: str) -> list[Any]:
        """Answers as Python values: A/AAAA address text, MX (preference, host), TXT list of byte strings,
        PTR host text. [] for NXDOMAIN or no data. Raises DnsTempError."""


def txt(view: DnsView, name: str) -> list[str]:
    """TXT records at ``name``, each record's strings joined."""
    return [b"".join(strings).decode("utf-8", "replace") for strings in view.records(name, "TXT")]


class ResolverDns:
    MEMO_SIZE = 8192

    def __init__(self, servers: Iterable[tuple[str, int]] = (), timeout: float = 5.0) -> None:
        servers = list(servers)
        if servers:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
        else:
            self.resolver = dns.resolver.Resolver()
        self.resolver.lifetime = timeout
        self.resolver.timeout = min(timeout, 3.0)
        self.resolver.cache = dns.resolver.LRUCache(8192)  # TTL-respecting, bounded
        # Answers as the checks want them, until their TTL runs out: dnspython's cache still builds
        # names and answer objects at every hit, and the same few records serve every message.
        self._memo: dict[tuple[str, str], tuple[float, list[Any]]] = {}

    def records(self, name: str, rdtype: str) -> list[Any]:
        key = (name.lower(), rdtype)
        hit = self._memo.get(key)
        if hit is not None and hit[0] > time.time():
            return list(hit[1])
        try:
            answer = self.resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(str(exc)) from None
        out: list[Any] = []
        for rdata in answer:
            if rdtype in ("A", "AAAA"):
                out.append(rdata.address)
            elif rdtype == "MX":
                out.append((rdata.preference, rdata.exchange.to_text(omit_final_dot=True)))
            elif rdtype == "TXT":
                out.append(list(rdata.strings))
            elif rdtype == "PTR":
                out.append(rdata.target.to_text(omit_final_dot=True))
        if answer.expiration > time.time():
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = (answer.expiration, out)
        return list(out)


class MemoryDns:
    """Zones as a dict: {("example.org", "TXT"): [[b"v=spf1 -all"]], ...}; a value "TEMP" simulates SERVFAIL."""

    def __init__(self, records: dict[tuple[str, str], Any]) -> None:
        self.data = {(name.lower().rstrip("."), rdtype): value for (name, rdtype), value in records.items()}

    def records(self, name: str, rdtype: str) -> list[Any]:
        value = self.data.get((name.lower().rstrip("."), rdtype), [])
        if value == "TEMP":
            raise DnsTempError("SERVFAIL")
        return list(value)
