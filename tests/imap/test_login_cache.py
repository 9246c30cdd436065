"""Logins remembered briefly in memory (``services.logins``), over real IMAP sessions.

A webmail opens an IMAP connection, logs in, does one thing and logs out, for every page. With the
auth cache the second login of the same password costs no Argon2 derivation; a wrong password, a
changed password or a revoked account never rides on it.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sealmail.services import credentials, revocation
from sealmail.services.logins import Logins

from support import wait_for


def _logins(imap) -> Logins:
    return imap.server.component.ctx.logins


def _login(imap, password: str) -> list[bytes]:
    raw = imap.raw()
    try:
        acct = imap.account()
        return raw.command(b'l1 LOGIN "' + acct.address.encode() + b'" "' + password.encode() + b'"')
    finally:
        raw.close()


def test_same_password_again_needs_no_derivation(imap) -> None:
    logins = _logins(imap)
    for _ in range(5):  # a webmail: a connection and a login per page
        client = imap.client()
        client.select("INBOX")
        client.logout()
    assert logins.derivations == 1
    assert logins.hits == 4


def test_wrong_password_is_never_served_from_memory(imap) -> None:
    imap.client().logout()
    logins = _logins(imap)
    before = logins.derivations
    lines = _login(imap, imap.account().password + "x")
    assert lines[-1].startswith(b"l1 NO [AUTHENTICATIONFAILED]"), lines
    assert logins.derivations == before + 1  # the full price, as for any wrong password


def test_changed_password_misses_at_once(imap) -> None:
    """The old password fails the moment it is changed, though it was remembered a moment before."""
    old = imap.account().password
    imap.client().logout()
    new = credentials.set_password(imap.config, imap.settings, imap.account().address, old_password=old)
    assert _login(imap, old)[-1].startswith(b"l1 NO [AUTHENTICATIONFAILED]")
    assert _login(imap, new)[-1].startswith(b"l1 OK")


def test_a_change_whose_revocation_has_not_arrived_misses_too(imap) -> None:
    """The credential is re-read at every hit: a password changed on another host (its revocation
    not here yet, or lost with a Redis failover) ends the remembered login at once."""
    acct = imap.account()
    imap.client().logout()
    alias = imap.config.find_alias("example.test", "exact", acct.address.split("@")[0])
    new = credentials._set_password(imap.config, imap.settings, acct.address, alias, acct.password, None, False, None)
    assert _login(imap, acct.password)[-1].startswith(b"l1 NO [AUTHENTICATIONFAILED]")
    assert _login(imap, new)[-1].startswith(b"l1 OK")


def test_revocation_drops_the_accounts_entries(imap) -> None:
    imap.client().logout()
    """A revocation from another process (an admin ending the account's sessions) forgets it here too."""
    logins = _logins(imap)
    ((alias_id, _),) = logins._entries.keys()
    revocation.announce(imap.settings, alias_id, "sessions ended by an admin")
    wait_for(lambda: not logins._entries, what="the revocation to drop the entry")


@pytest.mark.parametrize("imap", [{"auth_cache_seconds": 0}], indirect=True)
def test_cache_off_derives_every_time(imap) -> None:
    for _ in range(3):
        imap.client().logout()
    assert _logins(imap).derivations == 3
    assert _logins(imap).hits == 0


@pytest.mark.parametrize("imap", [{"auth_cache_seconds": 0.3}], indirect=True)
def test_an_entry_lives_auth_cache_seconds(imap) -> None:
    imap.client().logout()
    imap.client().logout()
    time.sleep(0.4)
    imap.client().logout()
    assert (_logins(imap).derivations, _logins(imap).hits) == (2, 1)


def test_derivations_run_side_by_side_up_to_kdf_concurrency(settings, monkeypatch) -> None:
    """A login storm uses kdf_concurrency threads at once, no more, and every login gets its answer."""
    running = peak = 0
    lock = threading.Lock()

    def slow_check(config, settings, address, password):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        raise credentials.AuthenticationFailed()

    monkeypatch.setattr(credentials, "check", slow_check)
    logins = Logins(settings.model_copy(update={"kdf_concurrency": 3}))

    async def storm() -> list[object]:
        return await asyncio.gather(
            *(logins.check(None, f"u{n}@example.test", "pw") for n in range(12)),  # type: ignore[arg-type]
            return_exceptions=True,
        )

    started = time.perf_counter()
    results = asyncio.run(storm())
    took = time.perf_counter() - started
    logins.close()
    assert all(isinstance(r, credentials.AuthenticationFailed) for r in results)
    assert peak == 3
    assert took < 12 * 0.05  # side by side, not one at a time
