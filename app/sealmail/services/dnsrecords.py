"""The DNS records a hosted domain needs, with the exact values to publish.

One source for the web admin's DNS page, ``sealmail dns-records`` and the deployment's dns role:
MX, SPF (the domain's, and the mail host's own for its HELO name), DKIM (RSA and Ed25519), DMARC,
MTA-STS and TLS-RPT, and client discovery
(``client_discovery_records``: RFC 6186 SRV for IMAP/POP3/submission, RFC 5804 SRV for ManageSieve,
RFC 6764 SRV and TXT for CalDAV/CardDAV, Thunderbird's autoconfig and Outlook's Autodiscover names).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from sealmail.addresses import normalize_domain, parse_mailbox
from sealmail.services.dkim import domain_keys, fetch_keys

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # fully qualified, ASCII, no trailing dot
    type: str  # MX, TXT, A, AAAA, CNAME, SRV
    value: str  # MX/CNAME/SRV targets end with "."; SRV is "priority weight port target"
    purpose: str
    priority: int | None = None  # MX only
    zone: str = ""  # the hosted domain (ASCII) whose zone holds the record

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


MTA_STS_MAX_AGE = 604800  # one week (RFC 8461 §3.2)
HELO_SPF = "v=spf1 a -all"  # the HELO name's SPF: only the mail host's own addresses send as it


def mta_sts_policy(settings: Settings) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2)."""
    return f"version: STSv1\nmode: {settings.mta_sts_mode}\nmx: {settings.mail_hostname}\nmax_age: {MTA_STS_MAX_AGE}\n"


def report_uri(settings: Settings, domain: str) -> str:
    """The mailto: URI DMARC (RFC 7489 §6.2) and TLS-RPT (RFC 8460 §3) reports are sent to."""
    if settings.report_address:
        mailbox = parse_mailbox(settings.report_address)
        local, host = mailbox.local, mailbox.domain.ascii
    else:
        local, host = "postmaster", domain
    # RFC 6068 §2: a mailto URI percent-encodes what is not plain ASCII (a UTF-8 local part).
    return f"mailto:{quote(local, safe='!$&*+-.^_`{|}~')}@{host}"


def _in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith(f".{zone}")


def _address_records(settings: Settings, name: str, purpose: str) -> list[DnsRecord]:
    out = []
    if settings.public_ipv4:
        out.append(DnsRecord(name, "A", settings.public_ipv4, purpose))
    if settings.public_ipv6:
        out.append(DnsRecord(name, "AAAA", settings.public_ipv6, purpose))
    return out


def records_for(settings: Settings, domain: str, store: ConfigStore | None = None) -> list[DnsRecord]:
    """Every record the zone of ``domain`` needs, each tagged with that zone. With the config
    store, DKIM keys another host made are taken from it first (``dkim.fetch_keys``)."""
    name = normalize_domain(domain).ascii
    host_hosted = False
    if store is not None:
        fetch_keys(settings, store, name)
        host_hosted = store.find_domain(settings.mail_hostname) is not None
    return [replace(r, zone=name) for r in _records(settings, name, host_hosted)]


def _records(settings: Settings, name: str, host_hosted: bool = False) -> list[DnsRecord]:
    host = settings.mail_hostname
    target = f"{host}."
    policy_id = hashlib.sha256(mta_sts_policy(settings).encode()).hexdigest()[:20]
    rua = report_uri(settings, name)
    records: list[DnsRecord] = []
    # Addresses: the mail host where its name lies in this zone, and the web admin at the apex of
    # the server's own domain (https://<domain>/). Other names point at the mail host by CNAME.
    if _in_zone(host, name):
        records += _address_records(settings, host, "the mail host's address")
    if name == settings.domain and host != name:
        records += _address_records(settings, name, "the web admin (https://<domain>/)")
    records += [
        DnsRecord(name, "MX", target, "where mail for the domain is delivered", priority=10),
        DnsRecord(name, "TXT", "v=spf1 mx -all", "SPF: only the domain's MX hosts send its mail (RFC 7208)"),
        *_helo_spf(settings, name, host_hosted),
    ]
    for key in domain_keys(settings, name):
        if key.path.exists():
            records.append(DnsRecord(key.dns_name(), "TXT", key.dns_value(), f"DKIM {key.algorithm} public key"))
    records += [
        DnsRecord(
            f"_dmarc.{name}", "TXT", f"v=DMARC1; p={settings.dmarc_policy}; rua={rua}", "DMARC policy (RFC 7489)"
        ),
        DnsRecord(f"_mta-sts.{name}", "TXT", f"v=STSv1; id={policy_id}", "MTA-STS policy id (RFC 8461)"),
        DnsRecord(f"mta-sts.{name}", "CNAME", target, "serves the MTA-STS policy over HTTPS"),
        DnsRecord(f"_smtp._tls.{name}", "TXT", f"v=TLSRPTv1; rua={rua}", "TLS reporting (RFC 8460)"),
        *client_discovery_records(settings, name),
    ]
    if name == settings.domain:
        for alias in (f"imap.{name}", f"smtp.{name}"):
            if alias != host:
                records.append(DnsRecord(alias, "CNAME", target, "the mail host, by the names users expect"))
    return records


def _helo_spf(settings: Settings, name: str, host_hosted: bool = False) -> list[DnsRecord]:
    """RFC 7208 §2.3: receivers check the name a host gives in HELO as well, and judge a bounce
    (null reverse-path) by it alone; the record lies in the zone that holds the name. A host named
    as a hosted domain (this one, or another such as mail.<domain> hosted too: ``host_hosted``)
    needs none: that domain's own record allows it (its MX), and a second v=spf1 record at one name
    would make both a permanent error (RFC 7208 §4.5)."""
    host = settings.mail_hostname
    if host == name or host_hosted or not _in_zone(host, name):
        return []
    return [DnsRecord(host, "TXT", HELO_SPF, "SPF of the mail host's HELO name: bounces are judged by it (RFC 7208)")]


def helo_spf_zone(settings: Settings, domains: list[str]) -> str | None:
    """The hosted domain whose records list the HELO name's SPF record, if one does."""
    names = [normalize_domain(d).ascii for d in domains]
    if settings.mail_hostname in names:
        return None  # the host's own domain's record covers it
    return next((d for d, name in zip(domains, names, strict=True) if _helo_spf(settings, name)), None)


def host_names(settings: Settings, domains: list[str]) -> list[str]:
    """The names that lead to this host for ``domains``: the names its TLS certificate must cover."""
    names = [settings.mail_hostname]
    if settings.domain and settings.domain not in names:
        names.append(settings.domain)  # the web admin, https://<domain>/
    for domain in domains:
        for record in records_for(settings, domain):
            if record.type in ("A", "AAAA", "CNAME") and record.name not in names:
                names.append(record.name)
    return names


def client_discovery_records(settings: Settings, name: str) -> list[DnsRecord]:
    """What lets a client that knows only an address find every service: RFC 6186 SRV for mail
    (plaintext IMAP/POP3 are not offered: target "." says so, RFC 6186 §4 / RFC 2782), RFC 5804 §1.8 SRV
    for ManageSieve, RFC 6764 SRV and TXT ``path=`` for CalDAV/CardDAV on their own ports, and
    Thunderbird's autoconfig name."""
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
        srv("_sieve", 0, settings.managesieve_port, "Sieve filter clients: ManageSieve, STARTTLS (RFC 5804 §1.8)"),
        srv("_caldavs", 0, dav_port(settings, "caldav"), "calendar clients (RFC 6764 §3)"),
        DnsRecord(f"_caldavs._tcp.{name}", "TXT", f"path={DAV_CONTEXT_PATH}", "CalDAV context path (RFC 6764 §4)"),
        srv("_carddavs", 0, dav_port(settings, "carddav"), "contact clients (RFC 6764 §3)"),
        DnsRecord(f"_carddavs._tcp.{name}", "TXT", f"path={DAV_CONTEXT_PATH}", "CardDAV context path (RFC 6764 §4)"),
        DnsRecord(f"autoconfig.{name}", "CNAME", target, "Thunderbird autoconfiguration"),
        DnsRecord(f"autodiscover.{name}", "CNAME", target, "Outlook Autodiscover (POX)"),
    ]
