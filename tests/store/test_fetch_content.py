"""FETCH content computed at append time: ENVELOPE, BODYSTRUCTURE, BODY[section], BINARY (RFC 9051 §6.4.5, §7.5.2)."""

from __future__ import annotations

import pytest

from sealmail.imap.wire import imap_serialize
from sealmail.mime import InvalidSection
from sealmail.store.errors import UnknownEncoding
from sealmail.store.mailbox import Mailbox

RAW = (
    b"From: =?utf-8?q?R=C3=A9mi?= <remi@example.test>\r\n"
    b"To: a@example.org, b@example.org\r\n"
    b"Subject: Structured\r\n"
    b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <s1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9\r\n"
    b"--outer\r\n"
    b"Content-Type: application/x-thing\r\n"
    b"Content-Transfer-Encoding: x-unknown\r\n"
    b"\r\n"
    b"abc\r\n"
    b"--outer--\r\n"
)


@pytest.fixture
def body_id(mailbox: Mailbox) -> int:
    uid = mailbox.append("INBOX", RAW).uid
    return mailbox.messages("INBOX", [uid])[0].body_id


def test_envelope(mailbox: Mailbox, body_id: int) -> None:
    env = mailbox.envelope_values([body_id])[body_id]
    wire = imap_serialize(env)
    assert wire.startswith(
        b'("Mon, 2 Nov 2026 10:00:00 +0100" "Structured" (("=?utf-8?q?R=C3=A9mi?=" NIL "remi" "example.test"))'
    )
    assert b'(NIL NIL "a" "example.org")(NIL NIL "b" "example.org")' in wire
    assert wire.endswith(b'NIL "<s1@example.test>")')


def test_bodystructure_and_body(mailbox: Mailbox, body_id: int) -> None:
    structure = imap_serialize(mailbox.bodystructure_values([body_id])[body_id])
    assert structure.startswith(b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 0')
    assert b'"mixed" ("boundary" "outer")' in structure
    plain = imap_serialize(mailbox.bodystructure_values([body_id], extensible=False)[body_id])
    assert plain.endswith(b'"mixed")')


def test_sections(mailbox: Mailbox, body_id: int) -> None:
    assert mailbox.section(body_id, "") == RAW
    assert mailbox.section(body_id, "HEADER") == RAW[: RAW.index(b"\r\n\r\n") + 4]
    assert mailbox.section(body_id, "HEADER.FIELDS (subject to)") == (
        b"To: a@example.org, b@example.org\r\nSubject: Structured\r\n\r\n"
    )
    assert b"Subject" not in mailbox.section(body_id, "HEADER.FIELDS.NOT (Subject)")
    assert mailbox.section(body_id, "1") == b"Caf=C3=A9"
    assert mailbox.section(body_id, "1.MIME").startswith(b"Content-Type: text/plain")
    assert mailbox.section(body_id, "3") is None
    assert mailbox.sections([body_id], "HEADER.FIELDS (Message-ID)") == {
        body_id: b"Message-ID: <s1@example.test>\r\n\r\n"
    }
    with pytest.raises(InvalidSection):
        mailbox.section(body_id, "1.BOGUS")


def test_binary(mailbox: Mailbox, body_id: int) -> None:
    assert mailbox.binary_section(body_id, "1") == "Café".encode()
    assert mailbox.binary_size(body_id, "1") == 5
    with pytest.raises(UnknownEncoding):
        mailbox.binary_section(body_id, "2")
