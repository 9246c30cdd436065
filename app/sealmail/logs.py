"""One line per event, to stderr (journald adds the time when run under systemd).

Every line names the component and, where there is one, the connection id, the peer and the
user. Secrets never reach a handler: a filter masks ``password=...``-style values and SASL
payloads, and protocol code logs metadata only, never message content.

Under systemd, whose journal reads stderr (``JOURNAL_STREAM`` names that stream, systemd.exec(5)),
each line starts with its syslog priority as ``<N>`` (sd-daemon(3): ``<3>`` err for ERROR, ``<4>``
warning, ``<6>`` info, ``<7>`` debug): journald strips it and files the line at that priority, so
``journalctl -p err`` lists the errors. The time is left to journald there.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

_FIELDS = ("component", "conn", "peer", "user")
_SECRET = re.compile(
    r"(?i)\b(pass(?:word|wd)?|secret|token|key|auth(?:orization)?)(\s*[=:]\s*|\s+)(?:\"[^\"]*\"|'[^']*'|\S+)"
)


def redact(text: str) -> str:
    """Mask values that follow a secret-looking name (``password=hunter2`` -> ``password=***``)."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class _ContextFilter(logging.Filter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "component", None):
            record.component = self.component
        for name in _FIELDS[1:]:
            if getattr(record, name, None) in (None, ""):
                setattr(record, name, "-")
        record.msg = redact(record.getMessage())
        record.args = None
        return True


# Python's levels -> syslog priorities (RFC 5424 §6.2.1), as sd-daemon(3) prefixes take them.
PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def priority(levelno: int) -> int:
    return next((p for level, p in sorted(PRIORITIES.items(), reverse=True) if levelno >= level), 7)


def journal_stream() -> bool:
    """Whether stderr is the journal's stream: ``JOURNAL_STREAM`` is its device and inode, as
    systemd sets it for a unit whose stderr goes to the journal (a pipe or a file is not)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{priority(record.levelno)}>" + super().format(record)


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def configure(component: str, level: str = "INFO") -> None:
    """Install the one-line-per-event handler on the root logger for this process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(component))
    line = "%(levelname)s %(component)s conn=%(conn)s peer=%(peer)s user=%(user)s %(message)s"
    if journal_stream():
        handler.setFormatter(_JournalFormatter(line))
    else:
        handler.setFormatter(_UTCFormatter("%(asctime)s " + line))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiosmtpd logs every connection event at INFO with its own format; our handlers log what matters.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # httpx logs every request at INFO: one line per message scanned by rspamd and per message taught
    # to it (what a user filed, and when); ours say what matters, in counts.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one connection: ``log = EventLogger("mx", conn="a1b2", peer="192.0.2.1")``."""

    def __init__(self, name: str, **context: Any) -> None:
        super().__init__(logging.getLogger(f"sealmail.{name}"), dict(context))

    def bind(self, **context: Any) -> EventLogger:
        merged = {**(self.extra or {}), **context}
        return EventLogger(self.logger.name.removeprefix("sealmail."), **merged)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs
