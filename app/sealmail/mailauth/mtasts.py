"""MTA-STS (RFC 8461) policies: the ``_mta-sts`` TXT record, the policy file, and fetching it.

Pure parsing, and one fetch over HTTPS that says why it failed. Outbound delivery
(``smtp.mtasts``: the cache, ``enforce``) and the deliverability checks (``doctor``: does the
policy a domain publishes match its MX records) both read policies through this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import httpx

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3
MAX_AGE_CAP = 31557600  # RFC 8461 §3.2: at most a year
POLICY_PATH = "/.well-known/mta-sts.txt"  # RFC 8461 §3.3


class PolicyUnavailable(Exception):
    """The policy could not be fetched or is not a valid policy; the message says why, in plain words."""


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


async def fetch_policy(client: httpx.AsyncClient, address: str, domain: str, port: int = 443) -> StsPolicy:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` from ``address`` (RFC 8461 §3.3):
    certificate valid for the policy host, status 200 without redirects, ``text/plain``, at most
    64 KiB, a valid policy. ``client`` decides the trusted CAs and the timeout and must not follow
    redirects. Raises ``PolicyUnavailable`` saying which of these failed."""
    host = f"mta-sts.{domain}"
    netloc = f"[{address}]" if ":" in address else address
    url = f"https://{netloc}:{port}{POLICY_PATH}"
    try:
        # Connect to the address we resolved, but speak TLS (SNI, certificate check) and HTTP as the host.
        async with client.stream("GET", url, headers={"Host": host}, extensions={"sni_hostname": host}) as response:
            if response.status_code != 200:
                raise PolicyUnavailable(f"the server answered HTTP {response.status_code}, not 200")
            kind = response.headers.get("content-type", "")
            if not kind.lower().startswith("text/plain"):
                raise PolicyUnavailable(f"the policy is served as {kind or 'no type'}, not text/plain")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_POLICY_BYTES:
                    raise PolicyUnavailable("the policy is larger than 64 KiB")
    except httpx.HTTPError as exc:
        raise PolicyUnavailable(str(exc) or type(exc).__name__) from None
    policy = parse_policy(body.decode("utf-8", "replace"))
    if policy is None:
        raise PolicyUnavailable("the file is not a valid STSv1 policy (version, mode, mx and max_age lines)")
    return policy
