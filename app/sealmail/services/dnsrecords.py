"""The DNS records a hosted domain needs, with the exact values to publish.

One source for the web admin's DNS page, ``sealmail dns-records`` and the deployment's dns role:
MX, SPF, DKIM (RSA and Ed25519), DMARC, MTA-STS and TLS-RPT, and client discovery
(``client_discovery_records``: RFC 6186 SRV for IMAP/POP3/submission, RFC 6764 SRV and TXT for
CalDAV/CardDAV, Thunderbird's autoconfig and Outlook's Autodiscover names).
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
        *client_discovery_records(settings, name),
    ]
    return records


def client_discovery_records(settings: Settings, name: str) -> list[DnsRecord]:
    """What lets a client that knows only an address find every service: RFC 6186 SRV for mail
    (plaintext IMAP/POP3 are not offered: target "." says so, RFC 6186 §4 / RFC 2782), RFC 6764 SRV
    and TXT ``path=`` for CalDAV/CardDAV on their own ports, and Thunderbird's autoconfig name."""
    from sealmail.services.clientconfig import DAV_CONTEXT_PATH, dav_port

    target = f"{settings.mail_hostname}."

    def srv(service: str, priority: int, port: int, purpose: str, to: str = target) -> DnsRecord:
        return DnsRecord(f"{service}._tcp.{name}", "SRV", f"{priority} 1 {port} {to}", purpose)

    return [
        srv("_submissions", 0, settings.submission_tls_port, "mail clients: SMTP submission, implicit TLS (RFC 8314)"),
        srv("_submission", 10, settings.submission_port, "mail clients: SMTP submission, STARTTLS (RFC 6186)"),
        srv("_imaps", 0, settings.imaps_port, "mail clients: IMAP, implicit TLS (RFC 6186)"),
        DnsRecord(f"_imap._tcp.{name}", "SRV", "0 0 0 .", "no plaintext IMAP here (RFC 6186 §4)"),
        srv("_pop3s", 10, settings.pop3s_port, "mail clients: POP3, implicit TLS (RFC 6186)"),
        DnsRecord(f"_pop3._tcp.{name}", "SRV", "0 0 0 .", "no plaintext POP3 here (RFC 6186 §4)"),
        srv("_caldavs", 0, dav_port(settings, "caldav"), "calendar clients (RFC 6764 §3)"),
        DnsRecord(f"_caldavs._tcp.{name}", "TXT", f"path={DAV_CONTEXT_PATH}", "CalDAV context path (RFC 6764 §4)"),
        srv("_carddavs", 0, dav_port(settings, "carddav"), "contact clients (RFC 6764 §3)"),
        DnsRecord(f"_carddavs._tcp.{name}", "TXT", f"path={DAV_CONTEXT_PATH}", "CardDAV context path (RFC 6764 §4)"),
        DnsRecord(f"autoconfig.{name}", "CNAME", target, "Thunderbird autoconfiguration"),
        DnsRecord(f"autodiscover.{name}", "CNAME", target, "Outlook Autodiscover (POX)"),
    ]
