"""IDLE (RFC 2177): changes from the MX, other sessions and other processes arrive within a second."""

from __future__ import annotations

import time

from .conftest import RawClient, ServerThread
from mailgen import message


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


def test_idle_hears_new_mail_from_the_mx_within_a_second(imap) -> None:
    """RFC 2177 §3: new mail delivered through the MX (sealed spool, Redis event) shows as EXISTS at once."""
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
    other = ServerThread(imap.settings)
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
