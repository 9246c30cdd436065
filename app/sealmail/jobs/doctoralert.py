"""The daily deliverability alert: ``sealmail doctor --alert``, run by a systemd timer (``sealmail.timers``).

One run of every check (``doctor.run.diagnose``); each problem the last run did not have
(``doctor.alert``) is logged at ERROR — priority ``err`` in the journal (``logs``) — with its fix,
and, when there is someone to tell (SEALMAIL_DOCTOR_ALERT_TO, else postmaster@<domain>), one plain
report of them goes out through the outbound queue, DKIM-signed as any mail of the domain. Problems
already reported are logged at INFO, once per run, and are not mailed again; a problem that went
away and came back is new again.

The memory of the run is written only after the report is queued: if the queue cannot take it,
the run fails (the unit's result says so) and the next run finds the same problems new and tries
again. Nothing else is changed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.doctor.alert import Change, compare, load_state, message, recipient, save_state, sender, state_path
from sealmail.doctor.run import diagnose
from sealmail.queue.service import open_queue
from sealmail.smtp import dkimsign

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.doctor.findings import Report
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.doctor")


@dataclass(frozen=True, slots=True)
class AlertRun:
    report: Report
    change: Change
    mailed_to: str | None  # who the new problems went to (None: nobody)
    queue_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "new": [f.id for f in self.change.new],
            "known": [f.id for f in self.change.known],
            "resolved": self.change.resolved,
            "mailed_to": self.mailed_to,
            "queue_id": self.queue_id,
            "report": self.report.as_dict(),
        }


def _queue_report(settings: Settings, store: ConfigStore, raw: bytes, to: str) -> str:
    """DKIM-sign with the sender's domain when it is hosted here, and queue one job."""
    from_address = sender(settings)
    domain = from_address.rsplit("@", 1)[1]
    if store.find_domain(domain) is not None:
        raw = dkimsign.sign(settings, domain, raw)
    mailstore = None
    if settings.store_url is not None:  # several hosts: the queue is the data host's
        from sealmail.store.remote import RemoteMailStore

        mailstore = RemoteMailStore.from_settings(settings)
    queue = open_queue(settings, mailstore)
    try:
        meta = {"mail_from": from_address, "rcpt_to": to, "origin": "doctor-alert", "smtputf8": not to.isascii()}
        return queue.add("smtp", meta, raw)
    finally:
        queue.close()


async def run_alert(settings: Settings, store: ConfigStore) -> AlertRun:
    report = await diagnose(settings, store)
    path = state_path(settings)
    change = compare(await asyncio.to_thread(load_state, path), report)
    for finding in change.new:
        fix = f" Fix: {finding.fix}" if finding.fix else ""
        log.error("new problem %s: %s: %s.%s", finding.id, finding.subject, finding.statement, fix)
    if change.known:
        log.info(
            "%d problem(s) reported before are still there: %s",
            len(change.known),
            ", ".join(f.id for f in change.known),
        )
    if change.resolved:
        log.info("gone since the last run: %s", ", ".join(change.resolved))
    to = recipient(settings)
    queue_id = None
    if change.new and to is not None:
        raw = message(settings, report, change, to)
        queue_id = await asyncio.to_thread(_queue_report, settings, store, raw, to)
        log.info("%d new problem(s) mailed to %s (queued as %s)", len(change.new), to, queue_id)
    elif change.new:
        log.warning("the new problems are mailed to nobody: SEALMAIL_DOCTOR_ALERT_TO is none, or no domain is set")
    if not change.new:
        log.info("no new problem (%d known, %d warning(s))", len(change.known), len(report.warnings))
    assert report.checked_at is not None
    await asyncio.to_thread(save_state, path, change.current, report.checked_at)
    return AlertRun(report, change, to if queue_id else None, queue_id)
