"""Delivery status notifications (RFC 3464, and RFC 6533 for internationalised mail).

A ``multipart/report; report-type=delivery-status`` with a human-readable part, the machine-readable
status (one block per recipient: Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code) and
the original message — whole, or only its headers when the sender asked ``RET=HDRS`` (RFC 3461
§4.3). It is sent from the null sender so it can never cause another bounce (RFC 5321 §6.1).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from typing import Literal

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient: str
    action: Action
    status: str  # enhanced status code, e.g. 5.1.1
    remote_mta: str | None = None
    diagnostic: str | None = None  # the remote reply, e.g. "550 5.1.1 No such user"
    original_recipient: str | None = None  # ORCPT as given (RFC 3461 §4.2), e.g. "rfc822;bob@b.test"


def _needs_utf8(*values: str | None) -> bool:
    return any(v is not None and not v.isascii() for v in values)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_dsn(
    *,
    reporting_mta: str,
    postmaster: str,
    to: str,
    original: bytes,
    recipients: list[RecipientStatus],
    envid: str | None = None,
    ret: str | None = None,
    arrival: datetime | None = None,
) -> bytes:
    """The whole report message, CRLF line ends, ready to queue from the null sender."""
    boundary = f"sealmail-dsn-{secrets.token_hex(8)}"
    utf8 = _needs_utf8(to, *(r.recipient for r in recipients), *(r.diagnostic for r in recipients))
    failed = [r for r in recipients if r.action == "failed"]
    delayed = [r for r in recipients if r.action == "delayed"]
    if failed:
        subject = "Undelivered Mail Returned to Sender"
        intro = "Your message could not be delivered to the recipients below. This is a permanent error."
    elif delayed:
        subject = "Delayed Mail (still being retried)"
        intro = "Your message has not been delivered yet to the recipients below. It is still being tried."
    else:
        subject = "Delivery Status Notification"
        intro = "Your message was delivered, as you asked to be told."
    lines = [intro, ""]
    for r in recipients:
        lines.append(f"  <{r.recipient}>: {r.action}" + (f" ({_one_line(r.diagnostic)})" if r.diagnostic else ""))
    human = "\r\n".join(lines) + "\r\n"

    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        per_message.append(f"Original-Envelope-Id: {envid}")
    per_message.append(f"Arrival-Date: {format_datetime(arrival or datetime.now(UTC))}")
    blocks = ["\r\n".join(per_message)]
    address_type = "utf-8" if utf8 else "rfc822"
    for r in recipients:
        block = []
        if r.original_recipient:
            block.append(f"Original-Recipient: {r.original_recipient}")
        block += [f"Final-Recipient: {address_type}; {r.recipient}", f"Action: {r.action}", f"Status: {r.status}"]
        if r.remote_mta:
            block.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.diagnostic:
            block.append(f"Diagnostic-Code: smtp; {_one_line(r.diagnostic)}")
        blocks.append("\r\n".join(block))
    status = "\r\n\r\n".join(blocks) + "\r\n"

    headers_only = ret == "HDRS"
    head_end = original.find(b"\r\n\r\n")
    returned = original[: head_end + 4] if headers_only and head_end >= 0 else original
    # RFC 6533: internationalised reports use the "global" media types.
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    if headers_only:
        returned_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    else:
        returned_type = "message/global" if utf8 or not original.isascii() else "message/rfc822"

    head = (
        f"From: Mail Delivery System <{postmaster}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: {make_msgid(domain=reporting_mta)}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-formatted delivery status notification.\r\n"
    )
    parts = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{human}"
        f"--{boundary}\r\nContent-Type: {status_type}\r\n\r\n{status}"
        f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n"
    )
    return (head + parts).encode("utf-8") + returned + f"\r\n--{boundary}--\r\n".encode()
