"""The daily alert's memory and its message: which problems are new since the last run.

``sealmail doctor --alert`` (run by a systemd timer, ``sealmail.timers``) compares the ids of this
run's problems (``findings.Finding.id``: the same for the same problem from run to run) with those
of the previous run, kept in ``<data>/doctor-alert.json``: ids and a time, nothing secret, readable
by its owner only. A problem is *new* when the previous run did not have it; one that went away and
came back is new again. Only problems count (a "could not check" is a warning: a slow resolver
must not page anyone). The jobs side (``jobs.doctoralert``) logs and mails what this decides.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sealmail.doctor.findings import Finding, Report
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.doctor")
STATE_FILE = "doctor-alert.json"
MAX_REMEMBERED = 10_000  # ids kept at most (a file that grew past this is not ours)


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def load_state(path: Path) -> set[str]:
    """The problem ids of the last run; none when there was none (or the file is unreadable: then
    every problem counts as new once, which is the safe side)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ids = data["problems"]
        if not isinstance(ids, list) or len(ids) > MAX_REMEMBERED or not all(isinstance(i, str) for i in ids):
            raise ValueError("not a list of ids")
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s could not be read (%s): every problem found now counts as new", path, exc)
        return set()
    return set(ids)


def save_state(path: Path, ids: set[str], when: datetime) -> None:
    """Write the ids atomically (a crash leaves the old file or the new one), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"problems": sorted(ids), "checked_at": when.isoformat()}, indent=1) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body.encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class Change:
    new: list[Finding]  # problems the last run did not have, in the report's order
    known: list[Finding]  # problems it had too
    resolved: list[str]  # ids of the last run's problems that are gone

    @property
    def current(self) -> set[str]:
        return {f.id for f in (*self.new, *self.known)}


def compare(previous: set[str], report: Report) -> Change:
    problems = report.problems
    return Change(
        new=[f for f in problems if f.id not in previous],
        known=[f for f in problems if f.id in previous],
        resolved=sorted(previous - {f.id for f in problems}),
    )


def recipient(settings: Settings) -> str | None:
    """Where new problems are mailed: SEALMAIL_DOCTOR_ALERT_TO, else postmaster@<domain>; None: nobody."""
    if settings.doctor_alert_to == "none":
        return None
    if settings.doctor_alert_to:
        return settings.doctor_alert_to
    return f"postmaster@{settings.domain}" if settings.domain else None


def sender(settings: Settings) -> str:
    return f"postmaster@{settings.domain or settings.mail_hostname}"


def _lines(finding: Finding) -> list[str]:
    out = [f"- {finding.subject}: {finding.statement}"]
    if finding.fix:
        out.append(f"  Fix: {finding.fix}")
    out.append(f"  ({finding.id})")
    return out


def message(settings: Settings, report: Report, change: Change, to: str) -> bytes:
    """A plain-text report of the new problems (and the known ones), as a message ready to queue."""
    host = report.helo
    count = len(change.new)
    mail = EmailMessage(policy=SMTP if to.isascii() else SMTPUTF8)
    mail["From"] = f"Sealmail on {host} <{sender(settings)}>"
    mail["To"] = to
    mail["Subject"] = f"{count} new deliverability problem{'s' if count != 1 else ''} on {host}"
    mail["Date"] = format_datetime(report.checked_at or datetime.now(UTC))
    mail["Message-ID"] = make_msgid("doctor", settings.mail_hostname)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no automatic replies to it
    body = [
        f"The daily check of {host} (sealmail doctor) found {count} new problem{'s' if count != 1 else ''}:",
        "",
    ]
    for finding in change.new:
        body += _lines(finding)
    if change.known:
        body += ["", "Still there from earlier runs:", ""]
        for finding in change.known:
            body += _lines(finding)
    if change.resolved:
        body += ["", "Gone since the last run: " + ", ".join(change.resolved)]
    body += [
        "",
        f"{len(report.problems)} problem(s), {len(report.warnings)} warning(s), {len(report.passed)} passed.",
        "The whole report: sudo sealmail doctor, or the web admin's Deliverability page.",
        "This message is sent once for each set of new problems; the next one comes when another appears.",
    ]
    mail.set_content("\n".join(body) + "\n")
    return bytes(mail)
