"""The DNS records a hosted domain needs, with the exact values to publish.

One source for the web admin's DNS page, ``sealmail dns-records`` and the deployment's dns role:
MX, SPF, DKIM (RSA and Ed25519), DMARC, MTA-STS and TLS-RPT, and client autoconfiguration (RFC
6186 SRV for IMAP/POP3/submission, RFC 6764 SRV for CalDAV/CardDAV, Thunderbird's autoconfig).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sealmail.addresses import normalize_domain
from sealmail.services.dkim import domain_keys

if TYPE_CHECKING:
    from sealmail.settings import Settings


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # fully qualified, ASCII, no trailing dot
    type: str  # MX, TXT, A, AAAA, CNAME, SRV
    value: str  # MX/CNAME/SRV targets end with "."; SRV is "priority weight port target"
    purpose: str
    priority: int | None = None  # MX only

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


MTA_STS_MAX_AGE = 604800  # one week (RFC 8461 §3.2)


def mta_sts_policy(settings: Settings) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2)."""
    return f"version: STSv1\nmode: enforce\nmx: {settings.mail_hostname}\nmax_age: {MTA_STS_MAX_AGE}\n"


def records_for(settings: Settings, domain: str) -> list[DnsRecord]:
    name = normalize_domain(domain).ascii
    host = settings.mail_hostname
    target = f"{host}."
    policy_id = hashlib.sha256(mta_sts_policy(settings).encode()).hexdigest()[:20]
    records = [
        DnsRecord(name, "MX", target, "where mail for the domain is delivered", priority=10),
        DnsRecord(name, "TXT", "v=spf1 mx -all", "SPF: only the domain's MX hosts send its mail (RFC 7208)"),
    ]
    for key in domain_keys(settings, name):
        if key.path.exists():
            records.append(DnsRecord(key.dns_name(), "TXT", key.dns_value(), f"DKIM {key.algorithm} public key"))
    records += [
        DnsRecord(f"_dmarc.{name}", "TXT", "v=DMARC1; p=quarantine; adkim=r; aspf=r", "DMARC policy (RFC 7489)"),
        DnsRecord(f"_mta-sts.{name}", "TXT", f"v=STSv1; id={policy_id}", "MTA-STS policy id (RFC 8461)"),
        DnsRecord(f"mta-sts.{name}", "CNAME", target, "serves the MTA-STS policy over HTTPS"),
        DnsRecord(
            f"_smtp._tls.{name}", "TXT", f"v=TLSRPTv1; rua=mailto:tls-reports@{name}", "TLS reporting (RFC 8460)"
        ),
        DnsRecord(f"_submissions._tcp.{name}", "SRV", f"0 1 465 {target}", "mail clients: SMTP submission (RFC 6186)"),
        DnsRecord(f"_imaps._tcp.{name}", "SRV", f"0 1 993 {target}", "mail clients: IMAP (RFC 6186)"),
        DnsRecord(f"_pop3s._tcp.{name}", "SRV", f"10 1 995 {target}", "mail clients: POP3 (RFC 6186)"),
        DnsRecord(f"_caldavs._tcp.{name}", "SRV", f"0 1 443 {target}", "calendar clients (RFC 6764)"),
        DnsRecord(f"_carddavs._tcp.{name}", "SRV", f"0 1 443 {target}", "contact clients (RFC 6764)"),
        DnsRecord(f"autoconfig.{name}", "CNAME", target, "Thunderbird autoconfiguration"),
    ]
    return records
