"""The SPF record of one name, evaluated the way receivers do for each address mail leaves from.

One evaluation for both identities a receiver checks (RFC 7208 §2.3, §2.4): a hosted domain as the
MAIL FROM (``doctor.domain``) and the name this host gives in HELO (``doctor.host``). pyspf does the
evaluation (``mailauth.spf``, the MX's own code); the lookups are counted through includes and
redirects (RFC 7208 §4.6.4). Blocking: pyspf asks DNS synchronously.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import spf as pyspf

from sealmail.mailauth import spf

if TYPE_CHECKING:
    from sealmail.mailauth.dnsview import DnsView

LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4


@dataclass(frozen=True, slots=True)
class Evaluated:
    name: str
    record: str | None  # its v=spf1 record; None: it has none (or it could not be read, below)
    lookups: int = 0  # DNS-querying terms, includes and redirects followed
    results: dict[str, spf.SpfResult] = field(default_factory=dict)  # per address, in the order given
    temperror: str = ""  # DNS did not answer: nothing is concluded
    permerror: str = ""  # no evaluation can succeed (two records, RFC 7208 §4.5)


def evaluate(
    view: DnsView, name: str, addresses: list[str], *, mail_from: str, helo: str, querytime: float
) -> Evaluated:
    """The record of ``name`` and its result for each address: as the MAIL FROM identity when
    ``mail_from`` is given, else as the HELO identity (``helo`` is ``name`` then)."""
    try:
        counted = spf.count_lookups(view, name, querytime=querytime)
    except pyspf.TempError as exc:
        return Evaluated(name, None, temperror=str(exc))
    except pyspf.PermError as exc:
        return Evaluated(name, None, permerror=str(exc))
    if counted.record is None:
        return Evaluated(name, None)
    results = {a: spf.check(view, a, mail_from, helo, querytime=querytime) for a in addresses}
    return Evaluated(name, counted.record, counted.count, results)


def mechanism(address: str) -> str:
    """The SPF mechanism that allows ``address`` alone."""
    return f"ip{ipaddress.ip_address(address).version}:{address}"
