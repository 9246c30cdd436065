"""What a user files into or out of Junk over IMAP teaches the real rspamd (``tests/rspamdkit.py``).

MOVE (RFC 6851 §3.1, RFC 9051 §6.4.8) and COPY (RFC 9051 §6.4.7) between folders whose special use
(RFC 6154 §2) is ``\\Junk``: into Junk is spam, out of Junk is ham, out of Junk into ``\\Trash`` is
nothing (``sealmail.spam.learning``). The session answers the command at once; the message is taught
in the background through the controller's ``/learnspam`` and ``/learnham`` with its password, and
the tests await rspamd's own counters (``RspamdServer.learns``).

mbsync cannot be the client here: isync 1.4.4 sends MOVE only for its ``Trash`` option (expunged
messages go to a trash folder); a file the user moves between local Maildir folders is uploaded
again with APPEND and expunged from its old folder, and APPEND into Junk is deliberately no signal.
imaplib sends the MOVE and COPY a mail client would.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import uuid

import pytest
from pydantic import SecretStr
from rspamdkit import JUNK_MARK, Learns

from .conftest import ASCII_ADDRESS
from privacyscan import Secrets, assert_no_secrets
from support import ComponentThread, wait_for

pytestmark = pytest.mark.tool("rspamd", "dnsmasq", "redis-server")

DEAD_CONTROLLER = "http://127.0.0.1:1"  # nothing listens there: every learning request is refused


@pytest.fixture
def imap_settings(imap_settings, rspamd):
    """The IMAP server of ``conftest.py``, teaching the session's rspamd through its password-guarded controller."""
    return imap_settings.model_copy(
        update={
            "rspamd_controller_url": rspamd.controller_url,
            "rspamd_controller_password": SecretStr(rspamd.controller_password),
            "rspamd_timeout": 10.0,
        }
    )


def _message(subject: str, marker: str) -> bytes:
    """A realistic message (rspamd's Bayes learns nothing from fewer than 11 tokens), unique per test:
    rspamd remembers each message it learned and answers a second time 208 "already learned"."""
    body = (
        f"Hello Alice,\r\n\r\nthank you for the notes from Tuesday's meeting ({marker}). I went through the "
        "budget\r\nfigures again and the travel line still looks high to me; could we compare it with last\r\n"
        "year's numbers before the board sees it on Friday?\r\n\r\nThe venue confirmed the larger room for "
        "the workshop, so we can invite the\r\nteam from the other office as well. I will send the agenda "
        "tomorrow morning.\r\n\r\nBest regards,\r\nBob\r\n"
    )
    return (
        f"From: Bob Example <bob@example.org>\r\nTo: {ASCII_ADDRESS}\r\nSubject: {subject} {marker}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def _uid_of(client: imaplib.IMAP4_SSL, folder: str, marker: str) -> bytes:
    assert client.select(folder)[0] == "OK"
    typ, data = client.uid("SEARCH", "SUBJECT", marker)
    assert typ == "OK", data
    (uid,) = data[0].split()
    return uid


def _move(client: imaplib.IMAP4_SSL, source: str, marker: str, target: str) -> None:
    """RFC 6851 §3.2 UID MOVE of the message carrying ``marker``."""
    typ, data = client.uid("MOVE", _uid_of(client, source, marker), target)
    assert typ == "OK", data


def _rose(rspamd, before: Learns, *, ham: int = 0, spam: int = 0) -> Learns:
    """Await rspamd's counters reaching ``before`` plus these learns; return them then."""
    want = Learns(before.learned + ham + spam, before.ham + ham, before.spam + spam)

    def reached() -> Learns | None:
        now = rspamd.learns()
        return now if now.learned >= want.learned and now.ham >= want.ham and now.spam >= want.spam else None

    return wait_for(reached, timeout=30, what=f"rspamd's counters reaching {want}")


def test_moved_out_of_junk_after_the_mx_filed_it_there_is_learned_as_ham(imap, rspamd) -> None:
    """The issue's case end to end: the MX asks rspamd, which scores the message in its ``add header``
    band, so it is filed into Junk; the user moves it back to INBOX with UID MOVE (RFC 6851 §3.2), and
    rspamd's ham count rises by exactly that message."""
    marker = f"lunch-{uuid.uuid4().hex[:12]}"
    mx = ComponentThread(
        "mx",
        imap.settings.model_copy(
            update={
                "mx_port": 0,
                "hostname": "mx.example.test",
                "dns_servers": [rspamd.dns.address],
                "rspamd_url": rspamd.url,
                "rspamd_timeout": 30.0,
            }
        ),
    )
    try:
        with smtplib.SMTP("127.0.0.1", mx.ports["mx"], timeout=60) as smtp:
            smtp.ehlo("client.example.org")
            smtp.sendmail("bob@example.org", [ASCII_ADDRESS], _message(f"notes {JUNK_MARK}", marker))
    finally:
        mx.stop()
    client = imap.client(ASCII_ADDRESS)
    try:
        uid = _uid_of(client, "Junk", marker)  # RFC 6154 §2 \Junk: where the add header band goes
        typ, data = client.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (X-Spam-Status)])")
        assert typ == "OK"
        assert b"X-Spam-Status: Yes" in data[0][1]
        before = rspamd.learns()
        typ, data = client.uid("MOVE", uid, "INBOX")
        assert typ == "OK", data
        after = _rose(rspamd, before, ham=1)
        assert after == Learns(before.learned + 1, before.ham + 1, before.spam)
        assert _uid_of(client, "INBOX", marker)
    finally:
        client.logout()


def test_copied_and_moved_into_junk_are_learned_as_spam(imap, rspamd) -> None:
    """RFC 9051 §6.4.7 COPY and RFC 6851 §3.1 MOVE from INBOX into the \\Junk folder: spam, each once."""
    markers = [f"offer-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for marker in markers:
        imap.deliver(_message("quarterly notes", marker), ASCII_ADDRESS)
    client = imap.client(ASCII_ADDRESS)
    try:
        before = rspamd.learns()
        typ, data = client.uid("COPY", _uid_of(client, "INBOX", markers[0]), "Junk")
        assert typ == "OK", data
        _move(client, "INBOX", markers[1], "Junk")
        after = _rose(rspamd, before, spam=2)
    finally:
        client.logout()
    assert after == Learns(before.learned + 2, before.ham, before.spam + 2)


def test_moved_to_trash_from_junk_is_not_learned(imap, rspamd) -> None:
    """Deleting junk says nothing of it: Junk -> \\Trash (RFC 6154 §2) teaches nothing.

    Nothing happens is awaited through something that does: a message filed into Junk afterwards is
    learned as spam, and its job comes after any job the first move could have queued (jobs go in
    the order their messages arrived), so once its spam is counted a wrong ham would be too."""
    trashed, junked = (f"{kind}-{uuid.uuid4().hex[:12]}" for kind in ("trash", "junk"))
    imap.deliver(_message("newsletter", trashed), ASCII_ADDRESS, folder="Junk")
    imap.deliver(_message("newsletter", junked), ASCII_ADDRESS)
    client = imap.client(ASCII_ADDRESS)
    try:
        before = rspamd.learns()
        _move(client, "Junk", trashed, "Trash")
        _move(client, "INBOX", junked, "Junk")
        after = _rose(rspamd, before, spam=1)
    finally:
        client.logout()
    assert after == Learns(before.learned + 1, before.ham, before.spam + 1)


@pytest.mark.parametrize("imap", [{"rspamd_controller_url": DEAD_CONTROLLER}], indirect=True)
def test_a_job_waits_in_the_encrypted_mailbox_through_a_restart(imap, rspamd) -> None:
    """The controller is unreachable when the user moves a message out of Junk; the IMAP server stops.
    The job waits inside the encrypted mailbox only (no byte of the message in clear anywhere under
    the data directory), and the first login after the restart, with the controller back, teaches it."""
    marker = f"restart-{uuid.uuid4().hex[:12]}"
    imap.deliver(_message("travel plans", marker), ASCII_ADDRESS, folder="Junk")
    before = rspamd.learns()
    client = imap.client(ASCII_ADDRESS)
    try:
        _move(client, "Junk", marker, "INBOX")
    finally:
        client.logout()
    settings = imap.server.settings
    imap.server.stop()
    assert rspamd.learns() == before  # the refused tries taught nothing
    assert_no_secrets(imap.settings.data_dir, Secrets().text("the moved message", marker), min_files=2)

    imap.server = ComponentThread("imap", settings.model_copy(update={"rspamd_controller_url": rspamd.controller_url}))
    client = imap.client(ASCII_ADDRESS)  # a login: the session holds the key, the learner runs
    try:
        after = _rose(rspamd, before, ham=1)
    finally:
        client.logout()
    assert after == Learns(before.learned + 1, before.ham + 1, before.spam)


def test_the_controller_needs_its_password(rspamd) -> None:
    """The private rspamd asks every client for the password, loopback too, as a deployed one does:
    the learning tests above pass through that check."""
    import httpx

    answer = httpx.post(
        f"{rspamd.controller_url}/learnham", content=_message("x", "no-password"), timeout=10, trust_env=False
    )
    assert answer.status_code == 401
    assert re.search(r"unauthori[sz]ed", answer.text, re.I)
