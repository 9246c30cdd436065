"""Draining IMAP (``sealmail drain on``): a new connection gets ``* BYE [UNAVAILABLE]`` (RFC 5530
§3: a temporary failure, the client tries again later or another front-end); a session opened
before goes on (RFC 9051 §7.1.5: BYE as the greeting ends the connection at once)."""

from __future__ import annotations

import socket

from sealmail.net.drain import set_draining


def _greeting(imap) -> bytes:
    with socket.create_connection(("127.0.0.1", imap.plain_port), timeout=10) as sock:
        return sock.makefile("rb").readline()


def test_drained_imap_says_bye_unavailable_and_open_sessions_go_on_rfc5530_3(imap) -> None:
    client = imap.client()
    try:
        set_draining(imap.settings.run_dir, True)
        assert _greeting(imap).startswith(b"* BYE [UNAVAILABLE] ")
        assert client.select("INBOX")[0] == "OK"
        assert client.noop()[0] == "OK"
    finally:
        set_draining(imap.settings.run_dir, False)
        client.logout()
    assert _greeting(imap).startswith(b"* OK")
