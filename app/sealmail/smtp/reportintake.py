"""The MX's report intake: DMARC aggregate and SMTP TLS reports sent to the addresses the app publishes.

Every DMARC and TLS-RPT record names one report address (``services.dnsrecords.report_uri``):
SEALMAIL_REPORT_ADDRESS, else postmaster@<each hosted domain>. The MX takes mail for it at RCPT
whether or not an alias has that name (most hosts have none: every report used to be refused with
``550 5.1.1``). After DATA, before anything is sealed — the MX holds the plaintext at that moment, as
it does for Sieve and the spam scan — the message is read (``sealmail.reports``) on a worker thread:

- reports found and read whole: each one about a hosted domain is kept in the config store, once
  per reporter and report id, and the message goes to no mailbox. Reports are operational data for
  the web admin's Reports page and the API, not mail for a person: big receivers send one per day
  per domain each, which would bury a postmaster mailbox, and the server reads them anyway;
- a report part that cannot be read whole (damaged, a DTD, an archive that unpacks past
  SEALMAIL_REPORT_MAX_BYTES) or a report about a domain not hosted here: refused with the reason
  (``550 5.6.0``, ``552 5.3.4``, ``550 5.7.1``), nothing kept, nothing delivered, one log line;
- no report part (a person writing to postmaster): delivered to the alias of that name as any mail
  is; without one, ``550 5.1.1``, as before.

A report address is the only kind of recipient in its transaction: a recipient of the other kind
is answered ``452 4.5.3`` (RFC 5321 §4.5.3.1.10: the client sends it in another transaction), so
the one reply after DATA holds for every recipient (RFC 5321 §4.2.5).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from sealmail.addresses import Mailbox, parse_mailbox
from sealmail.config.models import DmarcReport, LogEntry, TlsReport
from sealmail.reports.read import Report, read_reports
from sealmail.reports.unpack import ReportError
from sealmail.smtp.dataread import Pieces

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.mx")
_DMARC_RESULT = re.compile(r"\bdmarc=([a-z]+)", re.IGNORECASE)
MIXED_REPLY = "452 4.5.3 Send the report address and other recipients in separate transactions"


def is_report_address(settings: Settings, mailbox: Mailbox, hosted: bool) -> bool:
    """Whether ``mailbox`` is where this server asks for reports (its records' ``rua``)."""
    if settings.report_address:
        wanted = parse_mailbox(settings.report_address)
        return mailbox.local == wanted.local and mailbox.domain.ascii == wanted.domain.ascii
    return hosted and mailbox.local.lower() == "postmaster"  # RFC 5321 §4.5.1: any case


def carrier_dmarc(authentication_results: str) -> str:
    """The report message's own DMARC result from our Authentication-Results field ("none" if absent)."""
    found = _DMARC_RESULT.search(authentication_results)
    return found.group(1).lower() if found else "none"


def _hosted(store: ConfigStore, domain: str) -> bool:
    """``domain`` or a parent of it is hosted here (a report may be about a subdomain's mail)."""
    labels = domain.split(".")
    return any(store.find_domain(".".join(labels[i:])) is not None for i in range(len(labels) - 1))


def _ours(store: ConfigStore, report: Report) -> Report | None:
    """The report limited to the hosted domains it is about; None when it is about none of them."""
    if isinstance(report, DmarcReport):
        return report if _hosted(store, report.domain) else None
    policies = [p for p in report.policies if _hosted(store, p.domain)]
    if not policies:
        return None
    kept = {p.domain for p in policies}
    return TlsReport(
        report.org_name,
        report.report_id,
        report.begin,
        report.end,
        contact=report.contact,
        policies=policies,
        failures=[f for f in report.failures if f.domain in kept],
        carrier_dmarc=report.carrier_dmarc,
    )


def _about(report: Report) -> str:
    if isinstance(report, DmarcReport):
        failed = sum(r.count for r in report.rows if r.dkim != "pass" and r.spf != "pass")
        return (
            f"DMARC report {report.report_id} from {report.org_name}: {report.messages} message(s), "
            f"{failed} failing DMARC"
        )
    ok = sum(p.successful for p in report.policies)
    failed = sum(p.failed for p in report.policies)
    return f"TLS report {report.report_id} from {report.org_name}: {ok} session(s) fine, {failed} failed"


def _one_line(text: str, limit: int) -> str:
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in text)[:limit]


class ReportIntake:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.settings = app.settings

    async def take(self, message: Pieces, auth_results: str, peer: str, message_id: str | None) -> str | None:
        """The reply for a message to report addresses, or None when it carries no report (the
        caller delivers it as ordinary mail)."""
        limit = self.settings.report_max_bytes
        try:
            reports = await asyncio.to_thread(read_reports, b"".join(message), limit, carrier_dmarc(auth_results))
        except ReportError as exc:
            return await self._refuse(exc.reply, exc.reason, peer, message_id)
        if not reports:
            return None
        store = self.app.config
        ours = await self.app.config_call(lambda: [_ours(store, r) for r in reports])
        if any(r is None for r in ours):
            stranger = next(r for r, mine in zip(reports, ours, strict=True) if mine is None)
            about = stranger.domain if isinstance(stranger, DmarcReport) else ", ".join(stranger.domains)
            reason = f"it is about {about}, which this server does not host"
            return await self._refuse(f"550 5.7.1 Report refused: {reason}", reason, peer, message_id)
        kept = 0
        for report in ours:
            assert report is not None
            add = store.add_dmarc_report if isinstance(report, DmarcReport) else store.add_tls_report
            new = await self.app.config_call(add, report)
            kept += bool(new)
            domain = report.domain if isinstance(report, DmarcReport) else ",".join(report.domains)
            detail = _about(report) + ("" if new else " (kept already)")
            log.info("%s", detail)
            await self.app.log_event(
                LogEntry(
                    kind="delivery",
                    component="mx",
                    status="report",
                    domain=domain[:253],
                    message_id=message_id,
                    peer=peer,
                    detail=detail,
                )
            )
        return f"250 2.0.0 Ok: {len(ours)} report(s) read, {kept} new"

    async def _refuse(self, reply: str, reason: str, peer: str, message_id: str | None) -> str:
        # The reason may quote the reporter's bytes (a file name, a parser's message): one printable line.
        reply, reason = _one_line(reply, 400), _one_line(reason, 400)
        log.warning("report from %s refused: %s", peer, reason)
        await self.app.log_event(
            LogEntry(
                kind="delivery",
                component="mx",
                status="rejected",
                message_id=message_id,
                peer=peer,
                detail=f"report refused: {reason}"[:500],
            )
        )
        return reply
