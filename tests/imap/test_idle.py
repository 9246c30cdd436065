"""IDLE (RFC 2177): changes from the MX, other sessions and other processes arrive within a second."""

from __future__ import annotations

import smtplib
import time

from .conftest import ASCII_ADDRESS, RawClient
from dnsserver import DnsServer
from mailgen import message
from support import ComponentThread


def _idle(client: RawClient, tag: str = "i") -> None:
    client.send(f"{tag} IDLE\r\n")
    assert client.readline() == b"+ idling\r\n"


def _wait_for(client: RawClient, wanted: bytes, timeout: float = 1.0) -> tuple[list[bytes], float]:
    """Read untagged responses until ``wanted`` arrives; returns them and the time it took."""
    start = time.monotonic()
    seen: list[bytes] = []
    try:
        while (left := timeout - (time.monotonic() - start)) > 0:
            client.sock.settimeout(left)
            line = client.readline()
            seen.append(line)
            if line == wanted:
                return seen, time.monotonic() - start
    except TimeoutError:
        pass
    finally:
        client.sock.settimeout(10)
    raise AssertionError(f"{wanted!r} not seen within {timeout} s; got {seen!r}")


def test_idle_hears_new_sealed_mail_within_a_second(imap) -> None:
    """RFC 2177 §3: mail sealed into the spool by another store (as the MX does; Redis event) shows as
    EXISTS at once. The whole path from a real SMTP client through the MX listener is tested below."""
    watcher = imap.raw()
    watcher.login(imap.account())
    watcher.command("s SELECT INBOX")
    _idle(watcher)
    started = time.monotonic()
    imap.deliver(message(1))
    _wait_for(watcher, b"* 1 EXISTS\r\n", timeout=1.0 + (time.monotonic() - started))
    assert time.monotonic() - started < 2.0
    imap.deliver(message(2))
    _, took = _wait_for(watcher, b"* 2 EXISTS\r\n")
    assert took < 1.0
    watcher.send("DONE\r\n")
    assert watcher.until("i")[-1] == b"i OK IDLE terminated\r\n"
    watcher.close()


def test_idle_hears_flags_and_expunges_from_another_session(imap) -> None:
    """RFC 2177: FETCH and EXPUNGE responses are sent during IDLE as changes happen."""
    client = imap.client()
    for i in range(3):
        client.append("INBOX", None, None, message(i))
    client.select()
    watcher = imap.raw()
    watcher.login(imap.account())
    watcher.command("s EXAMINE INBOX")
    _idle(watcher)
    client.store("2", "+FLAGS", "(\\Flagged)")
    _wait_for(watcher, b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n")
    client.store("1", "+FLAGS", "(\\Deleted)")
    client.expunge()
    _wait_for(watcher, b"* 1 EXPUNGE\r\n")
    watcher.send("DONE\r\n")
    assert watcher.until("i")[-1] == b"i OK IDLE terminated\r\n"
    # After IDLE the session's sequence numbers follow: message 2 is now number 1.
    assert watcher.command("f FETCH 1 (UID)")[0] == b"* 1 FETCH (UID 2)\r\n"
    watcher.close()
    client.logout()


def test_changes_in_another_process_reach_idle(imap) -> None:
    """A second server process (its own store handle and Redis connection) changes flags: IDLE hears it."""
    other = ComponentThread("imap", imap.settings)
    try:
        client = imap.client()
        client.append("INBOX", None, None, message(1))
        client.logout()
        watcher = imap.raw()
        watcher.login(imap.account())
        watcher.command("s SELECT INBOX")
        _idle(watcher)
        elsewhere = RawClient("127.0.0.1", other.ports["imaps"], imap.tls)
        elsewhere.login(imap.account())
        elsewhere.command("s SELECT INBOX")
        elsewhere.command("t STORE 1 +FLAGS (\\Answered)")
        _wait_for(watcher, b"* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))\r\n")
        elsewhere.command("a APPEND INBOX {5+}\r\nHi!\r\n")
        _wait_for(watcher, b"* 2 EXISTS\r\n")
        watcher.send("DONE\r\n")
        watcher.until("i")
        watcher.close()
        elsewhere.close()
    finally:
        other.stop()


def test_idle_without_a_selected_mailbox_and_bad_done(imap) -> None:
    """RFC 2177: IDLE is valid in the authenticated state; anything but DONE ends it with BAD."""
    raw = imap.raw()
    raw.login(imap.account())
    _idle(raw)
    raw.send("NOPE\r\n")
    assert raw.until("i")[-1].startswith(b"i BAD")
    assert raw.command("n NOOP")[-1] == b"n OK NOOP completed\r\n"
    raw.close()


def test_mail_sent_to_the_real_mx_reaches_an_idling_client(imap, tmp_path) -> None:
    """RFC 5321 in, RFC 9051 §6.3.13 / RFC 2177 out: smtplib sends to the MX listener, the MX seals the
    message into the spool and announces it, the IMAP session in IDLE drains the spool, sends
    ``* 1 EXISTS``, and FETCH returns the body exactly as it was sent."""
    dnsd = DnsServer(tmp_path)  # a real, empty DNS: the sender publishes no SPF/DKIM/DMARC
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.start()
    mx_settings = imap.settings.model_copy(
        update={"mx_port": 0, "dns_servers": [dnsd.address], "hostname": "mx.example.test"}
    )
    mx = ComponentThread("mx", mx_settings)
    body = "A line sent through SMTP.\r\n.A line that starts with a dot (RFC 5321 4.5.2 transparency).\r\n"
    raw = (
        "From: Sender <sender@example.org>\r\nTo: <alice@example.test>\r\nSubject: through the MX\r\n"
        "Message-ID: <mx-idle@example.org>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n" + body
    ).encode()
    try:
        watcher = imap.raw()
        watcher.login(imap.account(ASCII_ADDRESS))
        assert b"* 0 EXISTS\r\n" in watcher.command("s SELECT INBOX")
        _idle(watcher)
        with smtplib.SMTP("127.0.0.1", mx.ports["mx"], timeout=30) as client:
            assert client.sendmail("sender@example.org", [ASCII_ADDRESS], raw) == {}
        _wait_for(watcher, b"* 1 EXISTS\r\n", timeout=10)
        watcher.send("DONE\r\n")
        assert watcher.until("i")[-1] == b"i OK IDLE terminated\r\n"
        fetched = watcher.command("f FETCH 1 (BODY.PEEK[TEXT] BODY.PEEK[])")
        assert fetched[-1].startswith(b"f OK")
        text = f"BODY[TEXT] {{{len(body)}}}\r\n".encode() + body.encode()
        assert text in fetched[0], fetched[0]
        assert fetched[0].split(b"BODY[] {", 1)[1].split(b"}\r\n", 1)[1].endswith(raw + b")\r\n")
        watcher.close()
    finally:
        mx.stop()
        dnsd.stop()
