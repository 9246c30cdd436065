"""What outbound delivery asks DNS, through the shared async resolver (``sealmail.net.dns``).

Kept to the three questions delivery has (MX hosts, host addresses, TXT) so the worker does not
care which resolver answers them; tests point ``SEALMAIL_DNS_SERVERS`` at a local DNS server.
"""

from __future__ import annotations

import dns.exception
import dns.resolver

from sealmail.net.dns import make_resolver
from sealmail.settings import Settings


class DnsMx:
    def __init__(self, settings: Settings) -> None:
        self.resolver = make_resolver(settings)

    async def mx_hosts(self, domain: str) -> list[str] | None:
        try:
            answer = await self.resolver.resolve(domain, "MX")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [r.exchange.to_text(omit_final_dot=True) for r in records]
        if len(hosts) == 1 and hosts[0] in ("", "."):
            return []  # null MX (RFC 7505)
        # Shuffle equal preferences? RFC 5321 §5.1 allows it; keeping order makes retries predictable.
        return [h for h in hosts if h not in ("", ".")]

    async def host_addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
                continue
            found += [r.to_text() for r in answer]
        return found

    async def txt_records(self, name: str) -> list[str]:
        try:
            answer = await self.resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
