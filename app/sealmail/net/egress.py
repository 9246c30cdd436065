"""Where outbound HTTP (webhooks) may go: public HTTPS hosts only, checked when saved and when sent.

A webhook URL is refused when saved if it is not ``https://``, names ``localhost`` (RFC 6761 §6.3)
or is an address literal that is not globally reachable. At send time the host is resolved, every
address is checked, and the connection goes to a checked address itself (no second lookup between
the check and the connect, so a DNS answer that changes in between cannot redirect it); TLS is
still verified against the host name, which is also sent as SNI. ``webhook_allow_private`` lifts
both checks for tests and private networks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpcore
import httpx

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

    from sealmail.settings import Settings

log = logging.getLogger("sealmail.net.egress")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT


class EgressRefused(Exception):
    """A target the policy forbids; no connection was made."""


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is no public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is None and address.sixtofour is not None:
            embedded = address.sixtofour
        if address.teredo is not None:
            return f"{address} is a Teredo tunnel address"
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{address} embeds {problem}" if problem else None
    checks = (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    )
    for attribute, label in checks:
        if getattr(address, attribute):
            return f"{address} is a {label} address"
    if isinstance(address, ipaddress.IPv4Address) and (address in _SHARED or address.is_global is False):
        return f"{address} is not a public address"
    if isinstance(address, ipaddress.IPv6Address) and (address.is_site_local or not address.is_global):
        return f"{address} is not a public address"
    return None


def _literal(host: str) -> IPAddress | None:
    """An address literal in the URL's host, legacy IPv4 spellings (``127.1``, ``0x7f.0.0.1``) included."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # what the C resolver would make of it
    except OSError:
        return None


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a webhook URL may not be saved, or None (names are resolved and checked again when sent)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        return "only https:// webhooks are allowed"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "the URL has no host"
    if allow_private:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name (RFC 6761 §6.3)"
    literal = _literal(host)
    if literal is not None:
        return address_problem(literal)
    return None


async def resolve_checked(host: str, port: int, settings: Settings) -> list[str]:
    """Every address of ``host``, each one checked; raises EgressRefused naming the first forbidden one."""
    allow = settings.webhook_allow_private
    literal = _literal(host)
    if literal is not None:
        found: list[str] = [str(literal)]
    elif settings.dns_servers:
        from sealmail.net.dns import make_resolver

        found = await _dns_addresses(make_resolver(settings), host)
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found:
        raise OSError(f"{host} has no address")
    if not allow:
        if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
            raise EgressRefused(f"{host} is a loopback name")
        for text in found:
            problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
            if problem:
                raise EgressRefused(f"{host} resolves to {problem}")
    return found


async def _dns_addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(host, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        found += [r.to_text() for r in answer]
    return found


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks a host once, then connects to the checked addresses themselves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, self.settings)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, settings: Settings, verify: ssl.SSLContext | bool) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx has no parameter for the network backend: replace its pool with one that uses ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=_PinnedBackend(settings),
        )


def webhook_client(settings: Settings, verify: ssl.SSLContext | bool, timeout: float) -> httpx.AsyncClient:
    """An HTTP client whose every connection passes the egress checks (no proxies from the environment)."""
    return httpx.AsyncClient(
        transport=_PinnedTransport(settings, verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
