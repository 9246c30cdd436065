"""Running Sieve scripts in the table tests of tests/sieve: a message, an envelope, a short summary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sealmail.sieve.actions import Discard, FileInto, Keep, Outcome, Redirect, Reject, Vacation
from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.evaluate import Envelope, Spam, evaluate

ME = "me@example.com"
SENDER = "coyote@desert.example.org"
# Monday 7 December 2026, 10:00 at +0100: the clock of every test unless one is given
NOW = datetime(2026, 12, 7, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))

HEADER = {
    "From": f"Wile E. Coyote <{SENDER}>",
    "To": f"Me <{ME}>",
    "Subject": "I have a present for you",
    "Date": "Mon, 7 Dec 2026 09:30:00 +0100",
    "Message-ID": "<anvil.1@desert.example.org>",
}


def message(body: str = "Look, I'm sorry about the whole anvil thing.\r\n", **fields: str | list[str]) -> bytes:
    """A message with :data:`HEADER`, changed by ``fields`` (``X_Foo`` is ``X-Foo``; ``""`` drops one;
    a list repeats the field)."""
    header: dict[str, str | list[str]] = dict(HEADER)
    for name, value in fields.items():
        header[name.replace("_", "-")] = value
    lines = []
    for name, value in header.items():
        for one in [value] if isinstance(value, str) else value:
            if one != "":
                lines.append(f"{name}: {one}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def run(
    script: str,
    raw: bytes | None = None,
    *,
    mail_from: str = SENDER,
    rcpt_to: str = ME,
    mailboxes: tuple[str, ...] = ("INBOX", "filter", "spam", "personal", "Partners", "Junk"),
    spam: Spam | None = None,
    now: datetime = NOW,
) -> Outcome:
    envelope = Envelope(mail_from=mail_from, rcpt_to=rcpt_to, alias=ME, addresses=(ME,))
    return evaluate(
        compile_script(script),
        message() if raw is None else raw,
        envelope,
        spam=spam,
        now=now,
        mailbox_exists=lambda name: name in mailboxes,
        vacation_secret=b"test secret",
    )


def summary(outcome: Outcome) -> tuple[str, ...]:
    """The actions as short strings: keep, fileinto:NAME, redirect:ADDRESS, reject:TEXT, discard,
    vacation; ``[flags]`` and ``:copy`` where they are set; ``error@LINE`` first after a run-time error."""
    out = [f"error@{outcome.error_line}"] if outcome.error else []
    for action in outcome.actions:
        flags = ""
        if isinstance(action, Keep | FileInto) and action.flags:
            flags = "[" + " ".join(action.flags) + "]"
        if isinstance(action, Keep):
            out.append("keep" + flags)
        elif isinstance(action, FileInto):
            out.append(f"fileinto:{action.mailbox}{flags}")
        elif isinstance(action, Redirect):
            out.append(f"redirect:{action.address}" + (":copy" if action.copy else ""))
        elif isinstance(action, Reject):
            out.append(("ereject:" if action.extended else "reject:") + action.reason)
        elif isinstance(action, Discard):
            out.append("discard")
        elif isinstance(action, Vacation):
            out.append("vacation")
    return tuple(out)
