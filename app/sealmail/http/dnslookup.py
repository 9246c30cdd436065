"""The DNS page's resolver: dnspython's async resolver pointed at the configured servers
(``SEALMAIL_DNS_SERVERS``, else the system's), answering in the text forms ``services.dnscheck`` reads.

The resolver itself is the shared one (``sealmail.net.dns``), without its cache: the page checks
what DNS says now, not what it said a while ago.
"""

from __future__ import annotations

from sealmail.net.dns import make_resolver
from sealmail.services.dnscheck import Lookup, resolver_lookup
from sealmail.settings import Settings


def make_lookup(settings: Settings) -> Lookup:
    resolver = make_resolver(settings)
    resolver.cache = None
    return resolver_lookup(resolver)
