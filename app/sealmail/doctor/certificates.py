"""The TLS certificate every listener of this host serves: trusted, covering the names clients
use, and not about to expire.

Each TLS port of the components this host runs (``components.here``, ``components.listeners``)
is reached on the host's own bind address, with STARTTLS where the protocol needs it (SMTP
RFC 3207, IMAP RFC 9051 §6.2.1, POP3 RFC 2595) through the standard library's clients, and the
certificate it serves is read. Under 21 days left is a warning, under 14 a problem (certbot
renews at 30: a certificate this close to its end was not renewed).
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509

from sealmail import components
from sealmail.doctor.findings import Finding, ok, problem, warning

if TYPE_CHECKING:
    from sealmail.settings import Settings

WARN_DAYS = 21
PROBLEM_DAYS = 14
# Port keys whose TLS starts inside the protocol, and which protocol that is.
STARTTLS = {"mx": "smtp", "submission": "smtp", "imap": "imap", "pop3": "pop3"}
RENEW = (
    "Renew it: `certbot renew` (or the Renew certificates entry of setup.sh), then see why the renewal "
    "timer did not (systemctl list-timers 'certbot*', journalctl -u certbot)."
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    component: str
    key: str  # the port key (components.PORTS)
    address: str
    port: int
    tls: str  # implicit or starttls

    @property
    def subject(self) -> str:
        at = f"[{self.address}]" if ":" in self.address else self.address
        named = self.key if self.key == self.component else f"{self.key} ({self.component})"
        return f"{named} {at}:{self.port}"


def _local_address(settings: Settings) -> str:
    """Where this host's listeners are reached from the host itself: its first bind address."""
    first = settings.bind_addresses[0]
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(first, first)  # noqa: S104


def endpoints(settings: Settings) -> list[Endpoint]:
    """Every public TLS listener of the components this host runs (port 0: picked at start, unknown)."""
    address = _local_address(settings)
    return [
        Endpoint(name, listener.key, address, listener.port, listener.tls)
        for name in components.here(settings)
        for listener in components.listeners(name, settings)
        if listener.public and listener.tls != "none" and listener.port
    ]


def _handshake(endpoint: Endpoint, context: ssl.SSLContext, timeout: float, helo: str) -> bytes:
    """The DER certificate the listener serves (blocking)."""
    address, port = endpoint.address, endpoint.port
    protocol = STARTTLS.get(endpoint.key) if endpoint.tls == "starttls" else None
    sock: ssl.SSLSocket
    if protocol is None:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=helo) as sock,
        ):
            return sock.getpeercert(binary_form=True) or b""
    if protocol == "smtp":
        with smtplib.SMTP(address, port, local_hostname=helo, timeout=timeout) as client:
            client.starttls(context=context)
            sock = client.sock  # type: ignore[assignment]
            return sock.getpeercert(binary_form=True) or b""
    if protocol == "imap":
        imap = imaplib.IMAP4(address, port, timeout=timeout)
        try:
            imap.starttls(ssl_context=context)
            return imap.sock.getpeercert(binary_form=True) or b""  # type: ignore[attr-defined]
        finally:
            imap.shutdown()
    pop = poplib.POP3(address, port, timeout=timeout)
    try:
        pop.stls(context=context)
        return pop.sock.getpeercert(binary_form=True) or b""  # type: ignore[attr-defined]
    finally:
        pop.close()


def covers(certificate: x509.Certificate, name: str) -> bool:
    """RFC 6125 §6.4: a DNS name of the subjectAltName equals ``name``, or is a wildcard
    ("*.example.com") standing for exactly its leftmost label."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    name = name.lower().rstrip(".")
    for written in (n.lower().rstrip(".") for n in sans.get_values_for_type(x509.DNSName)):
        if written == name:
            return True
        if written.startswith("*.") and "." in name and name.split(".", 1)[1] == written[2:]:
            return True
    return False


def inspect(
    endpoint: Endpoint, names: list[str], timeout: float, ca_file: str | None, helo: str, now: datetime | None = None
) -> list[Finding]:
    """Findings of one listener (blocking: two handshakes at most)."""
    key, subject = endpoint.key, endpoint.subject
    verifying = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    if ca_file:
        verifying.load_default_certs()  # a private CA beside the system's, not instead of it
    verifying.check_hostname = False  # names are judged below, for every name clients use
    untrusted = ""
    try:
        der = _handshake(endpoint, verifying, timeout, helo)
    except ssl.SSLCertVerificationError as exc:
        untrusted = exc.verify_message or str(exc)
        reading = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        reading.check_hostname = False
        reading.verify_mode = ssl.CERT_NONE  # only to read the certificate that failed verification
        try:
            der = _handshake(endpoint, reading, timeout, helo)
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto) as again:
            return [_unreachable(endpoint, str(again))]
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto) as exc:
        return [_unreachable(endpoint, str(exc) or type(exc).__name__)]
    certificate = x509.load_der_x509_certificate(der)
    findings: list[Finding] = []
    ends = certificate.not_valid_after_utc
    days = (ends - (now or datetime.now(UTC))).total_seconds() / 86400
    when = f"{ends:%Y-%m-%d}"
    if days < 0:
        findings.append(
            problem("certificate", "expired", key, subject, f"the certificate served here expired on {when}", RENEW)
        )
    elif days < PROBLEM_DAYS:
        findings.append(
            problem(
                "certificate",
                "expiring",
                key,
                subject,
                f"the certificate served here expires on {when}, in {days:.0f} days",
                RENEW,
            )
        )
    elif days < WARN_DAYS:
        findings.append(
            warning(
                "certificate",
                "expiring",
                key,
                subject,
                f"the certificate served here expires on {when}, in {days:.0f} days",
                RENEW,
            )
        )
    missing = [n for n in names if not covers(certificate, n)]
    if missing:
        findings.append(
            problem(
                "certificate",
                "names",
                key,
                subject,
                f"the certificate served here does not cover {', '.join(missing)}: clients using "
                f"{'that name' if len(missing) == 1 else 'those names'} refuse it",
                "Issue the certificate for every name `sealmail host-names` lists (the tls role does), "
                "then restart or reload the components.",
            )
        )
    if untrusted and days >= 0:
        findings.append(
            problem(
                "certificate",
                "untrusted",
                key,
                subject,
                f"the certificate served here is not trusted: {untrusted}",
                "Serve a certificate from a public CA (Let's Encrypt, through the tls role) with its "
                "intermediate certificates (fullchain.pem) as SEALMAIL_TLS_CERT_FILE.",
            )
        )
    if not findings:
        findings.append(
            ok(
                "certificate",
                key,
                subject,
                f"the certificate served here covers {', '.join(names)} and is valid until {when} ({days:.0f} days)",
            )
        )
    return findings


def _unreachable(endpoint: Endpoint, reason: str) -> Finding:
    return problem(
        "certificate",
        "unreachable",
        endpoint.key,
        endpoint.subject,
        f"no TLS handshake on port {endpoint.port}: {reason}",
        f"See whether sealmail-{endpoint.component} runs (systemctl status sealmail-{endpoint.component}) and "
        f"listens on port {endpoint.port} (SEALMAIL_{components.PORTS[endpoint.component][endpoint.key].upper()}).",
    )
