"""Whether this host can reach other mail servers on TCP port 25 at all.

Many hosting providers block outbound port 25 by default; a mail server behind such a block
receives mail but can deliver none. The check connects to the first MX host of a few well-known
domains (``doctor_port25_domains``, on ``smtp_relay_port``) and waits for its greeting: one
answer is enough. When DNS gave addresses and no server answered, the provider blocks the port.
It connects as delivery does (``net.outbound``): over the families mail is sent over, from the
chosen source address, so the check tests the path mail takes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.doctor.findings import Finding, ok, problem, unchecked
from sealmail.net import outbound
from sealmail.services.dnscheck import DnsLookupError

if TYPE_CHECKING:
    from sealmail.services.dnscheck import Lookup
    from sealmail.settings import Settings

KEY = "outbound"


@dataclass(frozen=True, slots=True)
class Attempt:
    domain: str
    host: str = ""
    address: str = ""
    reached: bool = False
    note: str = ""  # what happened, in words
    tried: bool = False  # DNS gave an address and a connection was tried


async def _connect(address: str, port: int, timeout: float, source: str | None = None) -> str | None:
    """None when the address answered (its greeting, or at least the connection), else why not."""
    local = (source, 0) if source else None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port, local_addr=local), timeout)
    except TimeoutError:
        return "no answer (timed out)"
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(reader.readline(), timeout)  # the 220 greeting (RFC 5321 §4.2)
            writer.write(b"QUIT\r\n")
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return None


async def _attempt(domain: str, lookup: Lookup, settings: Settings) -> Attempt:
    port, timeout = settings.smtp_relay_port, settings.doctor_timeout
    try:
        exchanges = sorted((int(p), h.rstrip(".").lower()) for p, h in (v.split() for v in await lookup(domain, "MX")))
        exchanges = [(p, h) for p, h in exchanges if h]  # a null MX (RFC 7505) takes no mail
        if not exchanges:
            return Attempt(domain, note=f"{domain} has no MX host")
        host = exchanges[0][1]
        v4, v6 = await asyncio.gather(lookup(host, "A"), lookup(host, "AAAA"))
    except DnsLookupError as exc:
        return Attempt(domain, note=f"DNS did not answer ({exc})")
    addresses = outbound.allowed(settings, v4 + v6)[:4]
    if not addresses:
        wanted = " or ".join(outbound.family_name(v) for v in outbound.families(settings))
        return Attempt(domain, host, note=f"{host} has no {wanted} address" if v4 + v6 else f"{host} has no address")
    sources = [outbound.source_address(settings, a) for a in addresses]
    errors = await asyncio.gather(*(_connect(a, port, timeout, s) for a, s in zip(addresses, sources, strict=True)))
    for address, error in zip(addresses, errors, strict=True):
        if error is None:
            return Attempt(domain, host, address, reached=True, tried=True)
    return Attempt(domain, host, addresses[0], note=f"{host} port {port}: {errors[0]}", tried=True)


async def check_port25(settings: Settings, lookup: Lookup) -> list[Finding]:
    domains = settings.doctor_port25_domains
    if not domains:
        return []
    port = settings.smtp_relay_port
    attempts = await asyncio.gather(*(_attempt(d, lookup, settings) for d in domains))
    reached = [a for a in attempts if a.reached]
    if reached:
        first = reached[0]
        return [
            ok("port25", KEY, f"outbound port {port}", f"{first.host} ({first.address}) of {first.domain} answered")
        ]
    tried = "; ".join(f"{a.domain}: {a.note}" for a in attempts)
    if not any(a.tried for a in attempts):  # no address to try: nothing is known about the port
        return [unchecked("port25", KEY, f"outbound port {port}", f"outbound port {port}", tried)]
    return [
        problem(
            "port25",
            "blocked",
            KEY,
            f"outbound port {port}",
            f"no mail server answered on port {port} ({tried}): your provider blocks outbound port {port}",
            f"Ask your hosting provider to open outbound port {port} (many block it by default and open it on "
            "request), or move to one that allows mail servers. Until then no mail leaves this host.",
        )
    ]
