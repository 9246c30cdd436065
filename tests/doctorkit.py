"""A host for the deliverability checks (``sealmail doctor``), built of real parts on loopback.

- a data directory hosting example.test, its DKIM keys made by the app;
- a test CA issuing certificates of any lifetime and names (``TestCA.issue``);
- the MX and IMAP components on free ports with such a certificate (SMTP STARTTLS, IMAPS, IMAP
  STARTTLS); the MX also stands in for the well-known domain's MX (big.test) that the outbound
  port 25 check connects to;
- an HTTPS server for mta-sts.example.test's policy (``policyserver.PolicyServer``);
- a real DNS server (dnsmasq) per test, publishing a ``Zone`` the test starts from
  ``good_zone()`` (exactly the records ``sealmail dns-records`` gives) and changes.

Addresses: the host says it is 203.0.113.5 and 2001:db8::5 (documentation ranges: public to the
checks, reachable by nobody). What the checks must reach (the policy server, big.test's MX) is on
127.0.0.1: mail.example.test carries 127.0.0.1 as an extra A record, and mta-sts.example.test is
an A record 127.0.0.1 instead of the CNAME — addresses among the mail host's, which the DNS check
accepts in place of a CNAME.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import domains
from sealmail.services.dnsrecords import DnsRecord, mta_sts_policy, records_for
from sealmail.settings import Settings, settings_to_env

from dnsserver import DnsServer
from policyserver import PolicyServer
from support import ComponentThread, free_port

DOMAIN = "example.test"
HOST = "mail.example.test"
IPV4, IPV6 = "203.0.113.5", "2001:db8::5"


@dataclass(frozen=True)
class Certs:
    cert: Path
    key: Path


class TestCA:
    """A CA of the tests' own and the certificates it issues (the dev CA makes only 397-day ones)."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sealmail doctor test CA")])
        start = datetime.now(UTC) - timedelta(days=1)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False),  # signs certificates
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_cert = directory / "ca.pem"
        self.ca_cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, label: str, names: tuple[str, ...], days: float) -> Certs:
        """A server certificate for ``names`` that ends ``days`` from now."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        paths = Certs(self.directory / f"{label}.pem", self.directory / f"{label}.key")
        paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        paths.key.chmod(0o600)
        return paths


@dataclass
class Zone:
    """What the test DNS server publishes. ``records`` start as the app's own for example.test."""

    records: list[DnsRecord]
    hosts: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses, each with its PTR
    bare: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses without a PTR
    ptrs: dict[str, str] = field(default_factory=dict)  # address -> name (a PTR alone)
    txts: list[tuple[str, str]] = field(default_factory=list)  # TXT records beyond the app's
    listed: list[tuple[str, str]] = field(default_factory=list)  # blocklist name -> answer (A)
    forwards: list[tuple[str, str]] = field(default_factory=list)  # zone -> server

    def drop(self, rdtype: str, name: str) -> None:
        self.records = [r for r in self.records if (r.type, r.name) != (rdtype, name)]

    def set(self, rdtype: str, name: str, value: str) -> None:
        self.records = [replace(r, value=value) if (r.type, r.name) == (rdtype, name) else r for r in self.records]

    def publish(self, server: DnsServer) -> None:
        hosts = {name: list(values) for name, values in self.hosts.items()}
        bare = {name: list(values) for name, values in self.bare.items()}
        for r in self.records:
            if r.type in ("A", "AAAA"):
                (hosts if r.name == HOST else bare).setdefault(r.name, []).insert(0, r.value)
            else:
                _publish(server, r)
        for name, addresses in hosts.items():
            for address in dict.fromkeys(addresses):
                server.a(name, address)
        for name, addresses in bare.items():
            for address in dict.fromkeys(addresses):
                server.address_only(name, address)
        for address, name in self.ptrs.items():
            server.ptr(address, name)
        for name, value in self.txts:
            server.txt(name, value)
        for name, answer in self.listed:
            server.address_only(name, answer)
        for zone, upstream in self.forwards:
            server.forward(zone, upstream)


def _publish(server: DnsServer, r: DnsRecord) -> None:
    if r.type == "MX":
        server.mx(r.name, r.value.rstrip("."), r.priority or 0)
    elif r.type == "TXT":
        server.txt(r.name, r.value)
    elif r.type == "CNAME":
        server.cname(r.name, r.value.rstrip("."))
    elif r.type == "SRV":
        priority, weight, port, target = r.value.split()
        if target == ".":
            server.no_service(r.name)
        else:
            server.srv(r.name, target.rstrip("."), int(port), int(priority), int(weight))
    else:
        raise ValueError(f"no way to publish {r.type} records here")


def good_zone(records: list[DnsRecord]) -> Zone:
    """The records the app asks for, and what the tests must reach on 127.0.0.1 (see the module's
    docstring): mta-sts.example.test, and big.test's MX for the port 25 check."""
    zone = Zone(list(records))
    zone.hosts[HOST] = ["127.0.0.1"]  # beside 203.0.113.5 / 2001:db8::5
    zone.drop("CNAME", f"mta-sts.{DOMAIN}")
    zone.bare[f"mta-sts.{DOMAIN}"] = ["127.0.0.1"]
    zone.records.append(DnsRecord("big.test", "MX", "mx.big.test.", "a well-known domain", priority=10))
    zone.bare["mx.big.test"] = ["127.0.0.1"]
    return zone


def serve(zone: Zone, workdir: Path) -> DnsServer:
    """A DNS server (dnsmasq) publishing ``zone``, started."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = DnsServer(workdir)
    zone.publish(server)
    server.start()
    return server


def blocklist_name(address: str, zone: str) -> str:
    """RFC 5782 §2.1/§2.4: the name a list answers about ``address`` (reversed octets or nibbles)."""
    ip = ipaddress.ip_address(address)
    return ip.reverse_pointer.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa") + "." + zone


class DoctorWorld:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = TestCA(directory / "ca")
        self.certs = self.ca.issue("server", (HOST, DOMAIN, f"mta-sts.{DOMAIN}"), days=90)
        self.policy_port = free_port()
        self.quiet_dns = DnsServer(directory / "quiet-dns")  # the components' own resolver: answers nothing
        (directory / "quiet-dns").mkdir()
        self.quiet_dns.txt("_nothing.quiet.test", "v=none")
        self.quiet_dns.start()
        self.settings = Settings(
            data_dir=directory / "data",
            argon2_time_cost=1,
            argon2_memory_kib=8192,
            domain=DOMAIN,
            hostname=HOST,
            bind_addresses=["127.0.0.1"],
            mx_port=0,
            imaps_port=0,
            imap_port=0,
            mx_auth_workers=0,
            tls_cert_file=self.certs.cert,
            tls_key_file=self.certs.key,
            dns_servers=[self.quiet_dns.address],
            public_ipv4=IPV4,
            public_ipv6=IPV6,
            smtp_ca_file=self.ca.ca_cert,
            mta_sts_port=self.policy_port,
            components=["mx", "imap"],
            doctor_port25_domains=["big.test"],
            doctor_timeout=2.0,
        )
        store = SQLiteConfigStore(self.settings.config_db_path)
        try:
            domains.add_domain(store, DOMAIN, self.settings)
        finally:
            store.close()
        self.policy = PolicyServer(self.policy_port, self.certs, mta_sts_policy(self.settings))
        self.mx = ComponentThread("mx", self.settings)
        self.imap = ComponentThread("imap", self.settings)
        # From here on, the settings of the host as it runs: its real ports (the SRV records name them).
        self.settings = self.settings.model_copy(
            update={
                "mx_port": self.mx.ports["mx"],
                "imaps_port": self.imap.ports["imaps"],
                "imap_port": self.imap.ports["imap"],
                "smtp_relay_port": self.mx.ports["mx"],  # big.test's MX is our MX
            }
        )
        self.records = records_for(self.settings, DOMAIN)

    def env(self, dns: DnsServer, **changes: str) -> dict[str, str]:
        """The environment of a ``sealmail doctor`` run against this host and ``dns``."""
        return {**settings_to_env(self.settings), "SEALMAIL_DNS_SERVERS": dns.address, **changes}

    def good_zone(self) -> Zone:
        return good_zone(self.records)

    def serve(self, zone: Zone, workdir: Path) -> DnsServer:
        return serve(zone, workdir)

    def close(self) -> None:
        for part in (self.imap, self.mx):
            part.stop()
        self.policy.stop()
        self.quiet_dns.stop()
