"""Literal limits (RFC 7888 §4, RFC 9051 §7.1 TOOBIG, RFC 7889 APPENDLIMIT) over real sockets.

A client that has not logged in gets no "+" continuation for a literal over a few KB: the server
answers at once and keeps none of the octets, so an anonymous peer cannot make it hold 50 MiB.
"""

from __future__ import annotations

import base64
import tracemalloc

import pytest

from sealmail.imap.server import PRE_AUTH_LITERAL_MAX

FIFTY_MIB = 50 * 1024 * 1024


def test_append_of_50_mib_before_login_gets_bad_without_continuation_and_nothing_is_buffered(imap) -> None:
    """RFC 9051 §7.1 (TOOBIG) / RFC 7888 §4: the server may refuse a synchronizing literal instead of
    sending "+"; before authentication it does so for anything over PRE_AUTH_LITERAL_MAX.

    The client here then misbehaves as an attacker would and pushes the 50 MiB anyway: the server
    must read them as (overlong, discarded) command lines, never hold them in memory.
    """
    raw = imap.raw()
    raw.sock.settimeout(5)
    raw.send(b"a1 APPEND INBOX {52428800}\r\n")
    assert raw.readline() == b"a1 BAD [TOOBIG] Literal too large before authentication\r\n"

    chunk = b"x" * (1024 * 1024)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        raw.sock.settimeout(60)
        for _ in range(FIFTY_MIB // len(chunk)):
            raw.sock.sendall(chunk)
        raw.send(b"\r\nz NOOP\r\n")
        lines = raw.until("z")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not any(line.startswith(b"+") for line in lines), lines
    assert lines[-1] == b"z OK NOOP completed\r\n"
    assert peak < 8 * 1024 * 1024, f"the server held {peak} octets of an unauthenticated client's data"
    raw.close()


def test_big_login_literal_before_auth_gets_bad_and_the_session_continues(imap) -> None:
    """RFC 7888 §4 / RFC 9051 §7.1: a 9000-octet LOGIN literal before login: BAD, no "+"."""
    raw = imap.raw()
    raw.sock.settimeout(5)
    raw.send(b"a1 LOGIN {9000}\r\n")
    assert raw.readline() == b"a1 BAD [TOOBIG] Literal too large before authentication\r\n"
    # The limit counts the whole command: several literals just under it add up.
    size = PRE_AUTH_LITERAL_MAX
    raw.send(b"a2 LOGIN {%d}\r\n" % size)
    assert raw.readline().startswith(b"+ ")
    raw.send(b"u" * size + b" {%d}\r\n" % size)
    assert raw.readline() == b"a2 BAD [TOOBIG] Literal too large before authentication\r\n"
    assert raw.command("a3 NOOP")[-1] == b"a3 OK NOOP completed\r\n"
    raw.login(imap.account())  # and logging in still works
    raw.close()


def test_non_synchronizing_literal_over_the_limit_before_auth_gets_bad_and_close(imap) -> None:
    """RFC 7888 §4: the octets of a ``{N+}`` literal follow without waiting, so a server that refuses
    it cannot find the next command: BAD, then BYE and the connection closes."""
    raw = imap.raw()
    raw.sock.settimeout(5)
    raw.send(b"a1 LOGIN {9000+}\r\n" + b"x" * 9000)
    assert raw.readline() == b"a1 BAD [TOOBIG] Literal too large before authentication\r\n"
    assert raw.readline().startswith(b"* BYE")
    with pytest.raises(ConnectionError):
        raw.readline()
    raw.close()


def test_small_literals_before_auth_still_log_in(imap) -> None:
    """RFC 9051 §6.2.3: LOGIN with literal user name and password, as real clients send them, both
    synchronizing and (RFC 7888) non-synchronizing."""
    account = imap.account()
    user, password = account.address.encode(), account.password.encode()
    raw = imap.raw()
    raw.sock.settimeout(5)
    raw.send(b"a1 LOGIN {%d}\r\n" % len(user))
    assert raw.readline().startswith(b"+ ")
    raw.send(user + b" {%d}\r\n" % len(password))
    assert raw.readline().startswith(b"+ ")
    raw.send(password + b"\r\n")
    assert raw.until("a1")[-1].startswith(b"a1 OK")
    raw.close()

    raw = imap.raw()
    raw.sock.settimeout(5)
    lines = raw.command(b"b1 LOGIN {%d+}\r\n%s {%d+}\r\n%s" % (len(user), user, len(password), password))
    assert lines[-1].startswith(b"b1 OK"), lines
    raw.close()


@pytest.mark.parametrize("imap", [{"imap_append_limit": 4096}], indirect=True)
def test_append_over_appendlimit_after_login_is_refused_without_continuation(imap) -> None:
    """RFC 7889 §4: an APPEND larger than APPENDLIMIT gets NO [TOOBIG] before any "+"; the session
    goes on, and an APPEND within the limit (larger than the pre-login limit's share) still works."""
    raw = imap.raw()
    raw.sock.settimeout(5)
    raw.login(imap.account())
    raw.send(b"a1 APPEND INBOX {5000}\r\n")
    assert raw.readline() == b"a1 NO [TOOBIG] Message larger than APPENDLIMIT 4096\r\n"
    assert raw.command("a2 NOOP")[-1] == b"a2 OK NOOP completed\r\n"
    body = b"Subject: ok\r\n\r\n" + base64.b64encode(b"y" * 2900) + b"\r\n"
    assert len(body) <= 4096
    raw.send(b"a3 APPEND INBOX {%d}\r\n" % len(body))
    assert raw.readline().startswith(b"+ ")
    raw.send(body + b"\r\n")
    assert raw.until("a3")[-1].startswith(b"a3 OK [APPENDUID")
    raw.close()
