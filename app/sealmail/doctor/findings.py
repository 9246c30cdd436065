"""What the deliverability checks say: findings, and the report that orders them.

A finding has a stable ``id`` — the kind of finding and its subject (``ptr.missing:203.0.113.5``,
``dkim.mismatch:example.com:rsa1``), never a number that changes from run to run — so a scheduled
run can tell a new problem from one it reported before by comparing the ids of two reports'
problems. Problems come first, then warnings, then what passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

Severity = Literal["problem", "warning", "ok"]
SEVERITIES: tuple[Severity, ...] = ("problem", "warning", "ok")


@dataclass(frozen=True, slots=True)
class Finding:
    id: str  # "<check>.<outcome>:<subject key>", the same for the same problem in every run
    severity: Severity
    # addresses, ptr, helo-spf, port25, blocklist, mx, spf, dkim, dmarc, mta-sts, tls-rpt, discovery, certificate
    check: str
    subject: str  # an address, a domain or a listener
    statement: str  # one line: what is so
    fix: str = ""  # what to change where, in plain words (empty when nothing is to be done)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def ok(check: str, key: str, subject: str, statement: str) -> Finding:
    return Finding(f"{check}.ok:{key}", "ok", check, subject, statement)


def problem(check: str, outcome: str, key: str, subject: str, statement: str, fix: str) -> Finding:
    return Finding(f"{check}.{outcome}:{key}", "problem", check, subject, statement, fix)


def warning(check: str, outcome: str, key: str, subject: str, statement: str, fix: str) -> Finding:
    return Finding(f"{check}.{outcome}:{key}", "warning", check, subject, statement, fix)


def unchecked(check: str, key: str, subject: str, what: str, reason: str) -> Finding:
    """A check DNS or the network did not answer: never a pass, never a listing."""
    return warning(
        check,
        "unchecked",
        key,
        subject,
        f"could not check {what}: {reason}",
        "Run the checks again; if this stays, see whether this host's resolver (SEALMAIL_DNS_SERVERS, "
        "else /etc/resolv.conf) answers, or whether a firewall drops the connection.",
    )


@dataclass
class Report:
    helo: str  # the name this host gives in HELO/EHLO (SEALMAIL_HOSTNAME)
    addresses: list[str]  # the public addresses checked
    addresses_from: Literal["settings", "dns", "none"]
    domains: list[str]
    findings: list[Finding] = field(default_factory=list)
    checked_at: datetime | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.findings = ordered(self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def passed(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "ok"]

    @property
    def exit_code(self) -> int:
        """1 when there is a problem; warnings alone are 0."""
        return 1 if self.problems else 0

    @property
    def addresses_said(self) -> str:
        """Where the addresses come from, in words."""
        if self.addresses_from == "settings":
            return "from the settings SEALMAIL_PUBLIC_IPV4 and SEALMAIL_PUBLIC_IPV6"
        if self.addresses_from == "dns":
            return f"from the A/AAAA records of {self.helo}, as SEALMAIL_PUBLIC_IPV4/IPV6 are not set"
        return "none known"

    def as_dict(self) -> dict[str, object]:
        return {
            "helo": self.helo,
            "addresses": self.addresses,
            "addresses_from": self.addresses_from,
            "domains": self.domains,
            "checked_at": self.checked_at,
            "seconds": round(self.seconds, 2),
            "summary": {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES},
            "exit_code": self.exit_code,
            "findings": [f.as_dict() for f in self.findings],
        }


def ordered(findings: list[Finding]) -> list[Finding]:
    """Problems first, then warnings, then passes; within each, the order the checks ran in."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))
