"""Failed logins leave no trace of what was typed as the user name: people type their password
there by mistake (RFC 1939 §13: the USER/PASS exchange carries secrets), and the log is read by
more people than the password's owner."""

from __future__ import annotations

import base64
import logging
import poplib

import pytest

TYPED = "Tr0ub4dor&3-correct-horse"  # a password typed into the user-name field


def _everything_logged(caplog) -> str:
    """Message and every attribute of every record (the formatter prints user=, peer=, conn=)."""
    return "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)


def test_a_failed_pop3_login_does_not_log_the_user_name_typed(pop3, account, client_context, caplog) -> None:
    caplog.set_level(logging.INFO)
    client = poplib.POP3_SSL("127.0.0.1", pop3.ports["pop3s"], context=client_context, timeout=30)
    try:
        client.user(TYPED)
        with pytest.raises(poplib.error_proto):
            client.pass_("anything")
        plain = base64.b64encode(f"\0{TYPED}\0anything".encode()).decode()
        with pytest.raises(poplib.error_proto):
            client._shortcmd(f"AUTH PLAIN {plain}")
        client.user(account.address)
        assert client.pass_(account.password).startswith(b"+OK")
    finally:
        client.quit()
    logged = _everything_logged(caplog)
    assert "login failed" in logged  # the failures are still logged...
    assert TYPED not in logged  # ...without the name typed
    assert TYPED.lower() not in logged.lower()
