"""Draining the MX and submission (``sealmail.net.drain``), one process and several.

RFC 5321 §3.8: while draining, a new connection gets ``421 4.3.2`` and is closed, so the sender
keeps its message and tries another MX; a session opened before goes on and its message is
accepted (``250``) and stored.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket

from sealmail.net.drain import set_draining

from smtpkit import inbox
from support import wait_for


def _greet(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile("rb").readline()


async def test_mx_drain_refuses_new_connections_with_421_and_finishes_open_ones_rfc5321_3_8(mx, config) -> None:
    def scenario() -> tuple[bytes, tuple[int, bytes], bytes]:
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as client:  # opened before the drain
            client.ehlo("client.example.org")
            set_draining(mx.settings.run_dir, True)
            refused = _greet(mx.port)
            client.mail("someone@example.org")
            client.rcpt("demo@example.test")
            accepted = client.data(b"Subject: during the drain\r\n\r\nbody\r\n")
        set_draining(mx.settings.run_dir, False)
        wait_for(lambda: mx.component._book.total == 0, what="the session's slot freed")
        return refused, accepted, _greet(mx.port)

    refused, accepted, readmitted = await asyncio.to_thread(scenario)
    assert refused.startswith(b"421 4.3.2 "), refused
    assert accepted[0] == 250
    assert readmitted.startswith(b"220")
    stored = inbox(mx.settings, config, "demo@example.test", mx.passwords["demo@example.test"])
    assert [m for m in stored if b"Subject: during the drain" in m]
