"""What the DMARC and TLS reports say, summed for the web admin's Reports page and ``/v1/reports``.

The MX keeps each report as it came (``smtp.reportintake``, ``config.models.DmarcReport``,
``TlsReport``); this sums the reports whose period begins in the last ``days`` UTC days:

- DMARC, per domain or all: messages per day that passed DMARC and that failed it (a message passes
  when its SPF or its DKIM result, as the receiver evaluated them, passed and aligned — RFC 7489
  §4.2), how many passed SPF, DKIM and DMARC, who sent as the domain (each source address with its
  numbers, the failing ones first), and which receivers reported;
- TLS: sessions per day that were fine and that failed, and the failures by receiving domain and
  result type (RFC 8460 §4.3), with the MX hosts and the reporters' sending addresses named;
- who reported, per domain (``dmarc_reporters``, ``tls_reporters``: pure functions over the reports):
  each reporter's reports, the period they cover and their numbers, the largest failing share first.

The names of the source addresses (their PTR) are looked up when asked (``ptr_names``), side by
side and within a few seconds: what DNS does not answer in time is shown without a name.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sealmail.config.models import DmarcReport, DmarcRow, TlsReport
from sealmail.errors import InvalidInput
from sealmail.services.dashboard import Day

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.services.dnscheck import Lookup

MAX_DAYS = 366
DMARC_SERIES = ("passed", "failed")  # messages per day
TLS_SERIES = ("successful", "failed")  # sessions per day
PTR_LOOKUPS = 50  # source addresses whose names are looked up for one page


@dataclass(slots=True)
class Source:
    """One address that sent mail as the domain, over every report of the window."""

    source_ip: str
    messages: int = 0
    spf_pass: int = 0
    dkim_pass: int = 0
    dmarc_pass: int = 0
    dispositions: Counter[str] = field(default_factory=Counter)  # what receivers did with its mail
    header_from: set[str] = field(default_factory=set)
    reporters: set[str] = field(default_factory=set)
    name: str | None = None  # its PTR, when looked up

    @property
    def failing(self) -> int:
        return self.messages - self.dmarc_pass


@dataclass(slots=True)
class Reporter:
    org_name: str
    reports: int = 0
    count: int = 0  # messages (DMARC) or sessions (TLS) it reported


@dataclass(slots=True)
class DmarcReporterRow:
    """What one receiver reported about one domain over the window (RFC 7489 §7.2)."""

    domain: str
    org_name: str
    emails: set[str] = field(default_factory=set)
    reports: int = 0
    begin: datetime | None = None  # the earliest start of its reports' periods
    end: datetime | None = None  # the latest end
    messages: int = 0
    spf_pass: int = 0  # SPF as the receiver's DMARC evaluation saw it: passed and aligned
    dkim_pass: int = 0  # the same for DKIM
    dmarc_pass: int = 0

    @property
    def failing(self) -> int:
        return self.messages - self.dmarc_pass

    @property
    def failing_share(self) -> float:
        """Percent of its messages that failed DMARC."""
        return 100.0 * self.failing / self.messages if self.messages else 0.0


@dataclass(slots=True)
class TlsReporterRow:
    """What one sending organisation reported about its TLS sessions to one domain (RFC 8460 §4.4)."""

    domain: str
    org_name: str
    contacts: set[str] = field(default_factory=set)
    reports: int = 0
    begin: datetime | None = None
    end: datetime | None = None
    successful: int = 0  # total-successful-session-count
    failed: int = 0  # total-failure-session-count

    @property
    def sessions(self) -> int:
        return self.successful + self.failed

    @property
    def failing_share(self) -> float:
        return 100.0 * self.failed / self.sessions if self.sessions else 0.0


@dataclass(slots=True)
class DmarcSummary:
    domain: str | None  # None: every domain
    days: list[Day]  # oldest first, zero-filled, ``DMARC_SERIES``
    messages: int
    spf_pass: int
    dkim_pass: int
    dmarc_pass: int
    sources: list[Source]  # the failing first, then by messages
    reporters: list[Reporter]
    reports: list[DmarcReport]  # newest first
    by_reporter: dict[str, list[DmarcReporterRow]]  # per domain: ``dmarc_reporters``

    def share(self, part: int) -> float:
        return 100.0 * part / self.messages if self.messages else 0.0


@dataclass(slots=True)
class TlsFailureGroup:
    """The failed sessions of one receiving domain and result type."""

    domain: str
    result_type: str
    sessions: int = 0
    receiving_mx: set[str] = field(default_factory=set)
    sending_ips: set[str] = field(default_factory=set)
    reasons: set[str] = field(default_factory=set)
    reporters: set[str] = field(default_factory=set)


@dataclass(slots=True)
class TlsSummary:
    domain: str | None
    days: list[Day]  # ``TLS_SERIES``
    successful: int
    failed: int
    failures: list[TlsFailureGroup]  # most sessions first
    reporters: list[Reporter]
    reports: list[TlsReport]
    by_reporter: dict[str, list[TlsReporterRow]]  # per domain: ``tls_reporters``


def window(days: int, today: date | None = None) -> tuple[date, datetime, datetime]:
    """The first day and the [since, until) of the last ``days`` UTC days up to today."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}")
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return first, since, since + timedelta(days=days)


def _zero_days(first: date, days: int, series: tuple[str, ...]) -> dict[date, dict[str, int]]:
    return {first + timedelta(days=n): dict.fromkeys(series, 0) for n in range(days)}


def _domain(name: str | None) -> str | None:
    if not name:
        return None
    from sealmail.addresses import normalize_domain

    return normalize_domain(name).ascii


def _passes_dmarc(row: DmarcRow) -> bool:
    # RFC 7489 §4.2: DMARC passes when SPF or DKIM passed and aligned, which is what
    # policy_evaluated's spf and dkim say (appendix C).
    return row.dkim == "pass" or row.spf == "pass"


def _widen(row: DmarcReporterRow | TlsReporterRow, begin: datetime, end: datetime) -> None:
    row.begin = begin if row.begin is None else min(row.begin, begin)
    row.end = end if row.end is None else max(row.end, end)


def dmarc_reporters(reports: Iterable[DmarcReport]) -> dict[str, list[DmarcReporterRow]]:
    """Per domain (in order of their names), a row per receiver that reported about it: the share
    of its messages that failed DMARC largest first, then the most messages."""
    rows: dict[tuple[str, str], DmarcReporterRow] = {}
    for report in reports:
        row = rows.setdefault((report.domain, report.org_name), DmarcReporterRow(report.domain, report.org_name))
        row.reports += 1
        if report.org_email:
            row.emails.add(report.org_email)
        _widen(row, report.begin, report.end)
        for record in report.rows:
            row.messages += record.count
            row.spf_pass += record.count if record.spf == "pass" else 0
            row.dkim_pass += record.count if record.dkim == "pass" else 0
            row.dmarc_pass += record.count if _passes_dmarc(record) else 0
    return _per_domain(rows.values(), lambda r: (-r.failing_share, -r.messages, r.org_name))


def tls_reporters(reports: Iterable[TlsReport], domain: str | None = None) -> dict[str, list[TlsReporterRow]]:
    """Per policy domain (all, or ``domain``), a row per organisation that reported sessions to it:
    the share of failed sessions largest first, then the most sessions. A report with policies
    for two domains counts for each."""
    rows: dict[tuple[str, str], TlsReporterRow] = {}
    for report in reports:
        counted: set[str] = set()
        for policy in report.policies:
            if domain is not None and policy.domain != domain:
                continue
            row = rows.setdefault((policy.domain, report.org_name), TlsReporterRow(policy.domain, report.org_name))
            if policy.domain not in counted:  # two policies of one domain (sts and tlsa) are one report
                counted.add(policy.domain)
                row.reports += 1
                _widen(row, report.begin, report.end)
                if report.contact:
                    row.contacts.add(report.contact)
            row.successful += policy.successful
            row.failed += policy.failed
    return _per_domain(rows.values(), lambda r: (-r.failing_share, -r.sessions, r.org_name))


Row = TypeVar("Row", DmarcReporterRow, TlsReporterRow)


def _per_domain(rows: Iterable[Row], order: Callable[[Row], tuple[float, int, str]]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: r.domain):
        grouped.setdefault(row.domain, []).append(row)
    return {name: sorted(found, key=order) for name, found in grouped.items()}


def dmarc_summary(
    store: ConfigStore, domain: str | None = None, days: int = 30, today: date | None = None
) -> DmarcSummary:
    first, since, until = window(days, today)
    domain = _domain(domain)
    reports = store.list_dmarc_reports(since, until, domain)
    per_day = _zero_days(first, days, DMARC_SERIES)
    sources: dict[str, Source] = {}
    reporters: dict[str, Reporter] = {}
    totals = Counter[str]()
    for report in reports:
        reporter = reporters.setdefault(report.org_name, Reporter(report.org_name))
        reporter.reports += 1
        day = per_day.get(report.begin.astimezone(UTC).date())
        for row in report.rows:
            passed = _passes_dmarc(row)
            source = sources.setdefault(row.source_ip, Source(row.source_ip))
            source.messages += row.count
            source.spf_pass += row.count if row.spf == "pass" else 0
            source.dkim_pass += row.count if row.dkim == "pass" else 0
            source.dmarc_pass += row.count if passed else 0
            source.dispositions[row.disposition] += row.count
            if row.header_from:
                source.header_from.add(row.header_from)
            source.reporters.add(report.org_name)
            reporter.count += row.count
            totals.update(
                messages=row.count,
                spf=row.count if row.spf == "pass" else 0,
                dkim=row.count if row.dkim == "pass" else 0,
                dmarc=row.count if passed else 0,
            )
            if day is not None:
                day["passed" if passed else "failed"] += row.count
    ranked = sorted(sources.values(), key=lambda s: (-s.failing, -s.messages, s.source_ip))
    return DmarcSummary(
        domain,
        [Day(d, counts) for d, counts in per_day.items()],
        totals["messages"],
        totals["spf"],
        totals["dkim"],
        totals["dmarc"],
        ranked,
        sorted(reporters.values(), key=lambda r: (-r.count, r.org_name)),
        reports,
        dmarc_reporters(reports),
    )


def tls_summary(store: ConfigStore, domain: str | None = None, days: int = 30, today: date | None = None) -> TlsSummary:
    first, since, until = window(days, today)
    domain = _domain(domain)
    reports = store.list_tls_reports(since, until, domain)
    per_day = _zero_days(first, days, TLS_SERIES)
    groups: dict[tuple[str, str], TlsFailureGroup] = {}
    reporters: dict[str, Reporter] = {}
    successful = failed = 0
    for report in reports:
        reporter = reporters.setdefault(report.org_name, Reporter(report.org_name))
        reporter.reports += 1
        day = per_day.get(report.begin.astimezone(UTC).date())
        for policy in report.policies:
            if domain is not None and policy.domain != domain:
                continue
            successful += policy.successful
            failed += policy.failed
            reporter.count += policy.successful + policy.failed
            if day is not None:
                day["successful"] += policy.successful
                day["failed"] += policy.failed
        for failure in report.failures:
            if domain is not None and failure.domain != domain:
                continue
            group = groups.setdefault(
                (failure.domain, failure.result_type), TlsFailureGroup(failure.domain, failure.result_type)
            )
            group.sessions += failure.sessions
            group.reporters.add(report.org_name)
            for target, value in (
                (group.receiving_mx, failure.receiving_mx),
                (group.sending_ips, failure.sending_ip),
                (group.reasons, failure.reason),
            ):
                if value:
                    target.add(value)
    return TlsSummary(
        domain,
        [Day(d, counts) for d, counts in per_day.items()],
        successful,
        failed,
        sorted(groups.values(), key=lambda g: (-g.sessions, g.domain, g.result_type)),
        sorted(reporters.values(), key=lambda r: (-r.count, r.org_name)),
        reports,
        tls_reporters(reports, domain),
    )


async def ptr_names(lookup: Lookup, addresses: list[str], timeout: float) -> dict[str, str]:
    """The PTR name of each of the first ``PTR_LOOKUPS`` addresses, asked side by side; an address
    without one, or whose answer is not back within ``timeout`` seconds, is left out."""
    wanted = list(dict.fromkeys(addresses))[:PTR_LOOKUPS]

    async def one(address: str) -> tuple[str, str | None]:
        try:
            names = await lookup(ipaddress.ip_address(address).reverse_pointer, "PTR")
        except Exception:  # no answer, a refusal, a bad address: shown without a name
            return address, None
        return address, names[0].rstrip(".") if names else None

    tasks = [asyncio.ensure_future(one(a)) for a in wanted]
    if not tasks:
        return {}
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    found: dict[str, str] = {}
    for task in done:
        address, name = task.result()
        if name:
            found[address] = name
    return found
