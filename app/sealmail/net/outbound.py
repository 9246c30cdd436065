"""Which addresses outbound SMTP may connect to, and from which local address.

``SEALMAIL_OUTBOUND_IP_FAMILY`` keeps delivery to one family (``ipv4``: a host whose IPv6 range has no
sending reputation yet), and ``SEALMAIL_OUTBOUND_SOURCE_IPV4``/``…_IPV6`` name the local address of
that family the connection leaves from (a host with several). Delivery (``smtp.delivery``) and the
doctor's outbound port 25 check (``doctor.port25``) both ask here, so the check tests the path mail
takes; the doctor checks the reverse DNS and the blocklists of exactly these families.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sealmail.settings import Settings


def version_of(address: str) -> int:
    return ipaddress.ip_address(address).version


def families(settings: Settings) -> tuple[int, ...]:
    """The IP versions outbound SMTP uses (4, 6 or both)."""
    family = settings.outbound_ip_family
    return (4,) if family == "ipv4" else (6,) if family == "ipv6" else (4, 6)


def allowed(settings: Settings, addresses: list[str]) -> list[str]:
    """``addresses`` of the families outbound SMTP uses, in their order."""
    kept = families(settings)
    return [a for a in addresses if version_of(a) in kept]


def source_address(settings: Settings, address: str) -> str | None:
    """The local address a connection to ``address`` leaves from (None: the kernel chooses)."""
    if version_of(address) == 4:
        return settings.outbound_source_ipv4
    return settings.outbound_source_ipv6


def family_name(version: int) -> str:
    return f"IPv{version}"
