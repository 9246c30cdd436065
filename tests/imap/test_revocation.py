"""Sessions end when their credentials stop being valid (issue 16, item 7).

A stolen password must stop reading new mail once the owner changes it: the change is made by
another process (the ``sealmail`` CLI) and reaches this server over Redis pub/sub within seconds;
the IMAP session gets an untagged BYE (RFC 9051 §7.1.5) and the connection closes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from sealmail.services import aliases, revocation

from .conftest import ADDRESS, ASCII_ADDRESS, RawClient
from support import async_wait_for


def _cli(imap, sealmail_bin: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "SEALMAIL_REDIS_URL": imap.redis_url,
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
    }
    result = subprocess.run(
        [sealmail_bin, *args, "--data-dir", str(imap.settings.data_dir)],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def _bye_then_eof(client: RawClient, timeout: float = 5.0) -> list[bytes]:
    """Lines the server sends until it closes the connection (fails if it stays open past ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        client.sock.settimeout(left)
        try:
            line = client.file.readline()
        except TimeoutError:
            break
        if not line:
            return seen
        seen.append(line)
    raise AssertionError(f"the connection stayed open {timeout} s after the change; got {seen!r}")


def _idling(imap, account) -> RawClient:
    """A session of ``account`` with INBOX selected, in IDLE (RFC 2177)."""
    client = imap.raw()
    client.login(account)
    client.command("s SELECT INBOX")
    client.send("i IDLE\r\n")
    assert client.readline() == b"+ idling\r\n"
    return client


CHANGES = {
    "passwd": lambda address: (("alias", "passwd", "--current", address), "{password}\n"),
    "disable": lambda address: (("alias", "set", address, "--disable"), ""),
    "reset": lambda address: (("alias", "passwd", "--reset-mailbox", address), ""),
    "rm": lambda address: (("alias", "rm", address), ""),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_idle_and_selected_sessions_get_bye_when_another_process_changes_the_account(
    imap, sealmail_bin, change
) -> None:
    """RFC 9051 §7.1.5: BYE, then the server closes — for IDLE and for a selected session between commands."""
    account = imap.account()
    idler = _idling(imap, account)
    selected = imap.raw()
    selected.login(account)
    selected.command("s SELECT INBOX")
    other = imap.raw()
    other.login(imap.account(ASCII_ADDRESS))

    args, stdin = CHANGES[change](ADDRESS)
    started = time.monotonic()
    _cli(imap, sealmail_bin, *args, stdin=stdin.format(password=account.password))

    for client in (idler, selected):
        lines = _bye_then_eof(client)
        assert any(line.startswith(b"* BYE ") for line in lines), lines
    assert time.monotonic() - started < 8
    # Another account's session is untouched.
    assert other.command("n NOOP")[-1].startswith(b"n OK")
    for client in (idler, selected, other):
        client.close()


def test_the_new_password_signs_in_and_the_old_one_no_longer_does(imap, sealmail_bin) -> None:
    account = imap.account()
    result = _cli(imap, sealmail_bin, "alias", "passwd", "--current", "--json", ADDRESS, stdin=account.password + "\n")
    import json

    new_password = json.loads(result.stdout)["password"]
    old = imap.raw()
    lines = old.command(f'l LOGIN "{ADDRESS}" "{account.password}"')
    assert lines[-1].startswith(b"l NO"), lines
    fresh = imap.raw()
    lines = fresh.command(f'l LOGIN "{ADDRESS}" "{new_password}"')
    assert lines[-1].startswith(b"l OK"), lines
    old.close()
    fresh.close()


def test_a_change_whose_event_never_arrived_is_found_by_the_recheck(imap) -> None:
    """Pub/sub keeps nothing for a process whose subscription was down: the bus re-checks its
    sessions' credentials itself (after subscribing again, and periodically), and a session whose
    account changed meanwhile gets BYE all the same (RFC 9051 §7.1.5)."""
    account = imap.account()
    idler = _idling(imap, account)
    other = imap.raw()
    other.login(imap.account(ASCII_ADDRESS))
    # Disabled without announcing it (no settings: no event), as if the event had been lost.
    aliases.update_alias(imap.config, ADDRESS, enabled=False)
    assert other.command("n NOOP")[-1].startswith(b"n OK")  # nothing told the server yet
    imap.server.call(imap.server.component.ctx.revocations.sweep())
    lines = _bye_then_eof(idler)
    assert any(line.startswith(b"* BYE ") for line in lines), lines
    assert other.command("n NOOP")[-1].startswith(b"n OK")
    idler.close()
    other.close()


async def test_the_bus_rechecks_its_sessions_every_recheck_seconds(monkeypatch) -> None:
    monkeypatch.setattr(revocation, "RECHECK_SECONDS", 0.05)
    bus = revocation.InProcessRevocations()
    valid = {"a": True}
    ended: list[revocation.Revoked] = []
    await bus.watch("a", ended.append, lambda: valid["a"])
    await bus.watch("b", ended.append, lambda: True)
    await asyncio.sleep(0.2)
    assert ended == []
    valid["a"] = False
    await async_wait_for(lambda: ended, timeout=5, what="the periodic re-check")
    assert ended == [revocation.Revoked("a", revocation.STALE)]
    await bus.close()
