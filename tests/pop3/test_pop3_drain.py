"""Draining POP3 (``sealmail drain on``): a new connection gets ``-ERR [SYS/TEMP]`` (RFC 3206 §4:
a temporary problem, try again later); a session opened before goes on."""

from __future__ import annotations

import poplib
import socket

from sealmail.net.drain import set_draining


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.makefile("rb").readline()


def test_drained_pop3_answers_err_sys_temp_and_open_sessions_go_on_rfc3206_4(pop3, account) -> None:
    port = pop3.ports["pop3"]
    before = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        set_draining(pop3.settings.run_dir, True)
        assert _greeting(port).startswith(b"-ERR [SYS/TEMP] ")
        assert before.capa()  # the open session still answers (CAPA: RFC 2449 §5)
    finally:
        set_draining(pop3.settings.run_dir, False)
        before.quit()
    assert _greeting(port).startswith(b"+OK")
