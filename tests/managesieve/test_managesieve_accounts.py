"""ManageSieve sign-in is IMAP's: the same failed-login limits (in the shared Redis), sessions that end
when the password changes in another process, and TRYLATER while the config store is away."""

from __future__ import annotations

import imaplib
import json
import os
import subprocess
import time

import pytest
import redis
from pydantic import SecretStr
from storekit import StoreThread

from managesievekit import Wire, signed_in
from pop3kit import make_account
from support import ComponentThread


def _fresh(server, client_context) -> Wire:
    connection = Wire.connect(server)
    assert connection.reply().status == "OK"
    connection.starttls(client_context)
    return connection


def test_failed_logins_are_counted_with_imaps_and_lock_both_out(
    serve, sieve_settings, client_context, redis_url
) -> None:
    """RFC 5804 §2.1 / issue 22: failures over ManageSieve and over IMAP fill one counter per account
    (``net.limits`` in Redis); past the limit the right password is refused on both, without a check."""
    account = make_account(sieve_settings, "alice@example.test")  # imaplib's LOGIN takes ASCII only
    redis.Redis.from_url(redis_url).flushdb()  # other tests' failures from 127.0.0.1
    settings = sieve_settings.model_copy(update={"redis_url": SecretStr(redis_url), "imaps_port": 0, "imap_port": 0})
    server = serve(redis_url=SecretStr(redis_url))
    imap = ComponentThread("imap", settings)
    try:
        sieve = _fresh(server, client_context)
        for _ in range(3):
            answer = sieve.authenticate(account.address, "wrong password")
        assert answer.status == "BYE"  # three in one connection
        sieve.close()
        for _ in range(2):
            client = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=client_context, timeout=30)
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                client.login(account.address, "wrong password")
            client.logout()
        sieve = _fresh(server, client_context)
        answer = sieve.authenticate(account.address, account.password)
        assert (answer.status, answer.code) == ("NO", "TRYLATER")
        sieve.close()
        client = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=client_context, timeout=30)
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            client.login(account.address, account.password)
        client.logout()
    finally:
        imap.stop()
        redis.Redis.from_url(redis_url).flushdb()


def test_a_changed_password_ends_the_session_with_bye(serve, account, client_context, redis_url, sealmail_bin) -> None:
    """The password changed by another process (``sealmail alias passwd``): the open session gets BYE
    (RFC 5804 §1.2) at once, and the new password signs in."""
    redis.Redis.from_url(redis_url).flushdb()
    server = serve(redis_url=SecretStr(redis_url))
    connection = signed_in(server, client_context, account.address, account.password)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "SEALMAIL_REDIS_URL": redis_url,
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
        "SEALMAIL_DATA_DIR": str(server.settings.data_dir),
    }
    result = subprocess.run(
        [sealmail_bin, "alias", "passwd", "--current", "--json", account.address],
        input=account.password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    new_password = json.loads(result.stdout)["password"]
    connection.sock.settimeout(5)
    started = time.monotonic()
    bye = connection.reply()
    assert bye.status == "BYE"
    assert "password" in bye.text
    assert connection.closed()
    assert time.monotonic() - started < 5
    connection.close()
    again = signed_in(server, client_context, account.address, new_password)
    assert again.cmd("LISTSCRIPTS").status == "OK"
    again.close()


def test_rfc5804_s1_3_trylater_while_the_config_store_is_away(
    sieve_settings, account, client_context, tmp_path
) -> None:
    """With the config store on a data host (``config_backend=store``) that goes away: commands get
    ``NO (TRYLATER)``, a sign-in too (and it is not counted as a failure), the session goes on."""
    data_host = StoreThread(sieve_settings, tmp_path / "store-tls")
    server = None
    try:
        from managesievekit import Running

        server = Running(data_host.client_settings(sieve_settings))
        connection = signed_in(server, client_context, account.address, account.password)
        assert connection.putscript("kept", "keep;\r\n").status == "OK"
        data_host.stop()
        answer = connection.cmd("LISTSCRIPTS")
        assert (answer.status, answer.code) == ("NO", "TRYLATER")
        answer = connection.putscript("more", "keep;\r\n")
        assert (answer.status, answer.code) == ("NO", "TRYLATER")
        assert connection.cmd('NOOP "alive"').code == 'TAG "alive"'
        connection.close()
        other = _fresh(server, client_context)
        for _ in range(3):  # never a BYE for "too many failures": the store's trouble is not a wrong password
            answer = other.authenticate(account.address, account.password)
            assert (answer.status, answer.code) == ("NO", "TRYLATER")
        other.close()
    finally:
        if server is not None:
            server.stop()
        data_host.stop()
