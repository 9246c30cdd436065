"""The resolver every component shares: dnspython's async resolver pointed at the configured servers
(``SEALMAIL_DNS_SERVERS``, else the system's), with ``dns_timeout`` as its lifetime.

Generic on purpose: what a component asks (MX hosts for delivery, records for the DNS page, addresses
for webhooks) stays with that component; tests point ``SEALMAIL_DNS_SERVERS`` at a local DNS server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.nameserver
import dns.resolver

if TYPE_CHECKING:
    from sealmail.settings import Settings


def parse_server(text: str) -> tuple[str, int]:
    """ "127.0.0.1", "127.0.0.1:5353", "[::1]:5353" or "::1" -> (address, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    if settings.dns_servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(s)) for s in settings.dns_servers]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = settings.dns_timeout
    resolver.timeout = min(settings.dns_timeout, 3.0)
    resolver.cache = dns.resolver.LRUCache(4096)
    return resolver
