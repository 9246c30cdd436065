"""MTA-STS (RFC 8461): a receiving domain's promise that its MX hosts do valid TLS.

The policy id is looked up in DNS (``_mta-sts.<domain>`` TXT); the policy itself is fetched over
HTTPS from ``mta-sts.<domain>`` (valid certificate, no redirects, at most 64 KiB) and cached for
its ``max_age``, refetched when the id changes. A policy in ``enforce`` mode limits delivery to the
MX hosts it names, with certificate checks; ``testing`` and ``none`` only inform.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext

log = logging.getLogger("sealmail.mtasts")
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3
MAX_AGE_CAP = 31557600  # RFC 8461 §3.2: at most a year


@dataclass(frozen=True, slots=True)
class StsPolicy:
    mode: Literal["enforce", "testing", "none"]
    mx: tuple[str, ...]
    max_age: int
    id: str = ""
    fetched_at: float = field(default_factory=time.time)

    def matches(self, host: str) -> bool:
        """RFC 8461 §4.1: exact names, or "*.example.net" matching exactly one more label."""
        host = host.rstrip(".").lower()
        for written in self.mx:
            pattern = written.rstrip(".").lower()
            if pattern.startswith("*."):
                suffix = pattern[1:]
                if host.endswith(suffix) and "." not in host[: -len(suffix)] and host[: -len(suffix)]:
                    return True
            elif host == pattern:
                return True
        return False

    @property
    def fresh(self) -> bool:
        return time.time() - self.fetched_at < self.max_age


def parse_policy(text: str) -> StsPolicy | None:
    """The policy file (RFC 8461 §3.2); None when it is not a valid STSv1 policy."""
    values: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None
        values.setdefault(key.strip().lower(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        return None
    mode = (values.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        return None
    try:
        max_age = min(int((values.get("max_age") or [""])[0]), MAX_AGE_CAP)
    except ValueError:
        return None
    mx = tuple(values.get("mx", []))
    if mode != "none" and not mx:
        return None
    return StsPolicy(mode, mx, max_age)  # type: ignore[arg-type]


def parse_txt(records: list[str]) -> str | None:
    """The policy id from ``_mta-sts`` TXT records (RFC 8461 §3.1); None unless exactly one valid record."""
    found = []
    for record in records:
        fields = dict(part.strip().split("=", 1) for part in record.split(";") if "=" in part)
        if fields.get("v") == "STSv1" and fields.get("id", "").isalnum():
            found.append(fields["id"])
    return found[0] if len(found) == 1 else None


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
        host = f"mta-sts.{domain}"
        try:
            addresses = await self.resolver.host_addresses(host)
        except Exception:
            addresses = []
        if not addresses:
            return None
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        url = f"https://{netloc}:{self.settings.mta_sts_port}/.well-known/mta-sts.txt"
        try:
            # Connect to the address we resolved, but speak TLS (SNI, certificate check) and HTTP as the host.
            async with self._client.stream(
                "GET", url, headers={"Host": host}, extensions={"sni_hostname": host}
            ) as response:
                if response.status_code != 200:
                    return None
                if not response.headers.get("content-type", "").lower().startswith("text/plain"):
                    return None
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_POLICY_BYTES:
                        return None
        except httpx.HTTPError as exc:
            log.info("MTA-STS policy of %s could not be fetched: %s", domain, exc)
            return None
        return parse_policy(body.decode("utf-8", "replace"))
