"""Delivery status notifications (RFC 3464; RFC 6533 for UTF-8 addresses)."""

from __future__ import annotations

import email
import email.policy

from sealmail.smtp.dsn import RecipientStatus, build_dsn

ORIGINAL = b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: Hello\r\nMessage-ID: <o1@a.test>\r\n\r\nbody text\r\n"


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_failure_report_structure() -> None:
    """RFC 3464 §2: multipart/report with text, message/delivery-status and the original message."""
    raw = build_dsn(
        reporting_mta="mail.a.test",
        postmaster="postmaster@a.test",
        to="alice@a.test",
        original=ORIGINAL,
        recipients=[
            RecipientStatus("bob@b.test", "failed", "5.1.1", "mx.b.test", "550 5.1.1 No such user", "rfc822;bob@b.test")
        ],
        envid="abc123",
    )
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "message/rfc822"]
    assert "bob@b.test" in parts[0].get_content()
    status = raw.split(b"Content-Type: message/delivery-status\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0].decode()
    assert "Reporting-MTA: dns; mail.a.test" in status
    assert "Original-Envelope-Id: abc123" in status
    assert "Final-Recipient: rfc822; bob@b.test" in status
    assert "Original-Recipient: rfc822;bob@b.test" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert "Remote-MTA: dns; mx.b.test" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 No such user" in status
    assert raw.rstrip().endswith(b"--")
    assert ORIGINAL in raw
    assert msg["Auto-Submitted"] == "auto-replied"


def test_ret_hdrs_returns_only_the_headers() -> None:
    """RFC 3461 §4.3: RET=HDRS."""
    raw = build_dsn(
        reporting_mta="m.a.test",
        postmaster="postmaster@a.test",
        to="alice@a.test",
        original=ORIGINAL,
        recipients=[RecipientStatus("bob@b.test", "failed", "5.0.0")],
        ret="HDRS",
    )
    assert b"Content-Type: text/rfc822-headers" in raw
    assert b"Subject: Hello" in raw
    assert b"body text" not in raw


def test_utf8_addresses_use_the_global_types() -> None:
    """RFC 6533 §3: message/global-delivery-status and utf-8 address type."""
    raw = build_dsn(
        reporting_mta="m.a.test",
        postmaster="postmaster@a.test",
        to="rémi@universitéxyz.fr",
        original=ORIGINAL,
        recipients=[RecipientStatus("josé@b.test", "failed", "5.1.1")],
    )
    assert b"Content-Type: message/global-delivery-status" in raw
    assert "Final-Recipient: utf-8; josé@b.test".encode() in raw
