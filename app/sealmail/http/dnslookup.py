"""The DNS page's resolver: dnspython's async resolver pointed at the configured servers
(``SEALMAIL_DNS_SERVERS``, else the system's), answering in the text forms ``services.dnscheck`` reads.

The resolver itself is the shared one (``sealmail.net.dns``); this module only turns answers into text.
"""

from __future__ import annotations

import dns.exception
import dns.resolver

from sealmail.net.dns import make_resolver
from sealmail.services.dnscheck import DnsLookupError, Lookup
from sealmail.settings import Settings


def make_lookup(settings: Settings) -> Lookup:
    resolver = make_resolver(settings)
    resolver.cache = None  # the page checks what DNS says now, not what it said a while ago

    async def lookup(name: str, rdtype: str) -> list[str]:
        try:
            answer = await resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsLookupError(str(exc) or type(exc).__name__) from None
        except dns.exception.DNSException as exc:
            raise DnsLookupError(str(exc) or type(exc).__name__) from None
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        return [r.to_text() for r in answer]

    return lookup
