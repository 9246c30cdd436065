"""A POP3 session ends when its account's password changes in another process (issue 16, item 7).

RFC 1939 §3 lets the server close the connection; closed without QUIT there is no UPDATE state
(RFC 1939 §6), so messages the session marked deleted stay.
"""

from __future__ import annotations

import json
import os
import poplib
import subprocess
import time

from pydantic import SecretStr

from pop3kit import deliver, login


def test_a_changed_password_closes_the_pop3_session_without_update(
    serve, account, client_context, redis_url, sealmail_bin
) -> None:
    running = serve(redis_url=SecretStr(redis_url))
    deliver(running.settings, account, b"Subject: one\r\n\r\nbody\r\n")
    client = login(running, client_context, account)
    assert client.stat()[0] == 1
    client.dele(1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "SEALMAIL_REDIS_URL": redis_url,
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
    }
    result = subprocess.run(
        [sealmail_bin, "alias", "passwd", "--current", "--json", account.address],
        input=account.password + "\n",
        env={**env, "SEALMAIL_DATA_DIR": str(running.settings.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    new_password = json.loads(result.stdout)["password"]
    # The server closes the connection by itself within seconds: a blocked read sees EOF.
    client.sock.settimeout(5)
    started = time.monotonic()
    assert client.file.readline() == b""
    assert time.monotonic() - started < 5
    client.close()
    # Nothing was removed (no UPDATE), and the new password opens the same maildrop.
    fresh = poplib.POP3_SSL("127.0.0.1", running.ports["pop3s"], context=client_context, timeout=30)
    fresh.user(account.address)
    fresh.pass_(new_password)
    assert fresh.stat()[0] == 1
    fresh.quit()
