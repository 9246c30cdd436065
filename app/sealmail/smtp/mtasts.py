"""MTA-STS (RFC 8461) for outbound delivery: a receiving domain's promise that its MX hosts do valid TLS.

The policy id is looked up in DNS (``_mta-sts.<domain>`` TXT); the policy itself is fetched over
HTTPS from ``mta-sts.<domain>`` (valid certificate, no redirects, at most 64 KiB) and cached for
its ``max_age``, refetched when the id changes. A policy in ``enforce`` mode limits delivery to the
MX hosts it names, with certificate checks; ``testing`` and ``none`` only inform. Parsing and
fetching live in ``mailauth.mtasts`` (the deliverability checks read policies too); this module
keeps delivery's cache.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any

import httpx

from sealmail.mailauth.mtasts import PolicyUnavailable, StsPolicy, fetch_policy, parse_txt

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext

log = logging.getLogger("sealmail.mtasts")


class MtaStsCache:
    def __init__(self, app: AppContext, resolver: Any) -> None:
        self.settings = app.settings
        self.resolver = resolver
        self._cache: dict[str, StsPolicy] = {}
        verify: ssl.SSLContext | bool = True
        if self.settings.smtp_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.smtp_ca_file))
        self._client = httpx.AsyncClient(timeout=20.0, verify=verify, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def policy(self, domain: str) -> StsPolicy | None:
        cached = self._cache.get(domain)
        try:
            policy_id = parse_txt(await self.resolver.txt_records(f"_mta-sts.{domain}"))
        except Exception:
            policy_id = None
        if policy_id is None:
            # No (readable) record: a cached policy stays in force until it expires (RFC 8461 §5.1).
            return cached if cached is not None and cached.fresh else None
        if cached is not None and cached.id == policy_id and cached.fresh:
            return cached
        fetched = await self._fetch(domain)
        if fetched is None:
            return cached if cached is not None and cached.fresh else None
        policy = StsPolicy(fetched.mode, fetched.mx, fetched.max_age, policy_id)
        self._cache[domain] = policy
        return policy

    async def _fetch(self, domain: str) -> StsPolicy | None:
        try:
            addresses = await self.resolver.host_addresses(f"mta-sts.{domain}")
        except Exception:
            addresses = []
        if not addresses:
            return None
        try:
            return await fetch_policy(self._client, addresses[0], domain, self.settings.mta_sts_port)
        except PolicyUnavailable as exc:
            log.info("MTA-STS policy of %s could not be fetched: %s", domain, exc)
            return None
