"""One run of the deliverability checks: every check side by side, each within its time.

Every DNS question and connection gets ``doctor_timeout`` seconds; each group of checks gets a few
times that (``GROUP_STEPS``) for the steps it takes one after another, and what is not done by then
is reported as "could not check", never as a pass. So the whole report takes seconds even on a
host where some lookups time out. Blocking work (the config store, DKIM key files, pyspf, the
standard library's TLS clients) runs on threads, so a web server awaiting a run keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import httpx

from sealmail.doctor import certificates, domain, host, port25
from sealmail.doctor.findings import Finding, Report, unchecked
from sealmail.mailauth.dnsview import ResolverDns
from sealmail.net.dns import make_resolver, parse_server
from sealmail.services import dkim, dnsrecords
from sealmail.services import domains as hosted
from sealmail.services.dnscheck import resolver_lookup

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")
GROUP_STEPS = 4  # questions or connections a group of checks makes one after another, at most


async def _thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


async def _within(seconds: float, work: Awaitable[list[Finding]], late: Callable[[], Finding]) -> list[Finding]:
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        return [late()]


def _late(check: str, key: str, subject: str, what: str, seconds: float) -> Callable[[], Finding]:
    return lambda: unchecked(check, key, subject, what, f"no answer within {seconds:g} s")


def _domain_names(settings: Settings, store: ConfigStore, only: str | None) -> list[str]:
    if only is not None:
        return [hosted.get_domain(store, only).name]
    return [d.name for d in hosted.list_domains(store)]


def _domain_material(settings: Settings, name: str) -> tuple[list[dnsrecords.DnsRecord], list[dkim.DkimKey]]:
    """The records the domain needs with the DKIM keys this host has, and those keys. Key files
    another host made are not fetched here (the checks change nothing, and a run as root would
    leave files the service cannot read): a key this host lacks is reported instead."""
    return dnsrecords.records_for(settings, name), dkim.domain_keys(settings, name)


def _trust(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.smtp_ca_file))  # a private CA (tests, private networks)
    return context


async def diagnose(settings: Settings, store: ConfigStore, *, only_domain: str | None = None) -> Report:
    """Every check, for the host and for each hosted domain (or ``only_domain``)."""
    began, checked_at = time.monotonic(), datetime.now(UTC)
    timeout = settings.doctor_timeout
    budget = timeout * GROUP_STEPS
    resolver = make_resolver(settings)
    resolver.cache = None  # what DNS says now
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, resolver.timeout)
    lookup = resolver_lookup(resolver)
    view = ResolverDns([parse_server(s) for s in settings.dns_servers], timeout=timeout)
    helo = settings.mail_hostname

    names = await _thread(_domain_names, settings, store, only_domain)
    every = names if only_domain is None else await _thread(_domain_names, settings, store, None)
    helo_zone = dnsrecords.helo_spf_zone(settings, every)
    material = await asyncio.gather(*(_thread(_domain_material, settings, n) for n in names))
    try:
        addresses, source, first = await asyncio.wait_for(host.public_addresses(settings, lookup), timeout * 2)
    except TimeoutError:
        addresses, source = [], "none"
        first = [_late("addresses", helo, helo, f"the addresses of {helo}", timeout * 2)()]
    for name, (_, keys) in zip(names, material, strict=True):
        first += domain.check_keys(keys, name)

    async with httpx.AsyncClient(timeout=timeout, verify=_trust(settings), follow_redirects=False) as client:
        groups: list[Awaitable[list[Finding]]] = []
        for address in addresses:
            groups.append(
                _within(
                    budget,
                    _one(host.check_reverse(resolver, address, helo)),
                    _late("ptr", address, address, f"the reverse DNS of {address}", budget),
                )
            )
        if addresses:
            groups.append(
                _within(
                    budget,
                    host.check_blocklists(lookup, addresses),
                    _late("blocklist", "all", ", ".join(addresses), "the blocklists", budget),
                )
            )
            groups.append(
                _within(
                    budget,
                    _thread(host.check_helo_spf, view, helo, addresses, helo_zone, budget),
                    _late("helo-spf", helo, helo, f"the SPF record of {helo}", budget),
                )
            )
        groups.append(
            _within(
                budget,
                port25.check_port25(settings, lookup),
                _late("port25", port25.KEY, "outbound port 25", "outbound port 25", budget),
            )
        )
        for name, (records, _) in zip(names, material, strict=True):
            groups.append(
                _within(
                    budget,
                    domain.check_records_of(lookup, name, records, helo),
                    _late("records", name, name, f"the DNS records of {name}", budget),
                )
            )
            groups.append(
                _within(
                    budget,
                    _thread(domain.check_spf, view, name, addresses, helo, budget),
                    _late("spf", name, name, f"the SPF record of {name}", budget),
                )
            )
            groups.append(
                _within(
                    budget,
                    domain.check_mta_sts(lookup, client, name, settings.mta_sts_port, helo),
                    _late("mta-sts", f"{name}:policy", name, f"the MTA-STS policy of {name}", budget),
                )
            )
        web_names = await _thread(dnsrecords.host_names, settings, names)
        ca_file = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        for endpoint in certificates.endpoints(settings):
            wanted = web_names if endpoint.component == "web" else [helo]
            groups.append(
                _within(
                    budget,
                    _thread(certificates.inspect, endpoint, wanted, timeout, ca_file, helo),
                    _late("certificate", endpoint.key, endpoint.subject, "the certificate", budget),
                )
            )
        results = await asyncio.gather(*groups)
    findings = [*first, *(f for group in results for f in group)]
    return Report(helo, addresses, source, names, findings, checked_at, time.monotonic() - began)


async def _one(work: Awaitable[Finding]) -> list[Finding]:
    return [await work]


class ReportCache:
    """The last report of a process (the web admin's Deliverability page), kept ``ttl`` seconds.
    One run at a time: a second request while one runs gets that run's report."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._report: Report | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def latest(self) -> Report | None:
        if self._report is not None and time.monotonic() - self._at < self.ttl:
            return self._report
        return None

    async def refresh(self, run: Callable[[], Awaitable[Report]]) -> Report:
        asked = time.monotonic()
        async with self._lock:
            if self._report is not None and self._at >= asked:
                return self._report  # a run that began while this request waited answers it too
            self._report = await run()
            self._at = time.monotonic()
            return self._report
