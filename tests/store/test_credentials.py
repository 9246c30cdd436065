"""Passwords, unlocking and re-wrapping through the service layer."""

from __future__ import annotations

import time

import pytest

from sealmail.errors import InvalidInput
from sealmail.services import aliases, credentials
from sealmail.services.credentials import AuthenticationFailed
from sealmail.store.mailstore import MailStore


def test_unlock_opens_the_mailbox_with_raw_keys(config, settings, account) -> None:
    address, password = account
    unlocked = credentials.unlock(config, settings, address, password)
    box = MailStore(settings.data_dir).open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        assert "INBOX" in {f.name for f in box.list_folders()}
    finally:
        box.close()


def test_login_name_is_normalised(config, settings, account) -> None:
    _, password = account
    assert credentials.unlock(config, settings, "RÉMI@Example.Test".replace("É", "é"), password).alias.name == "rémi"


def test_changing_the_password_rewraps_and_never_reencrypts(config, settings, account) -> None:
    address, password = account
    before = credentials.unlock(config, settings, address, password)
    store = MailStore(settings.data_dir)
    box = store.open_sync(before.mailbox_id, before.secrets.mailbox_key)
    box.append("INBOX", b"Subject: kept\r\n\r\nstill here\r\n")
    box.close()
    new = credentials.set_password(config, settings, address, old_password=password)
    after = credentials.unlock(config, settings, address, new)
    assert after.secrets == before.secrets
    assert after.mailbox_id == before.mailbox_id
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, address, password)
    with pytest.raises(AuthenticationFailed):
        credentials.verify(config, settings, address, password)
    assert credentials.verify(config, settings, address, new).name == "rémi"
    box = store.open_sync(after.mailbox_id, after.secrets.mailbox_key)
    assert len(box.uids("INBOX")) == 1
    box.close()


def test_a_reset_without_the_keys_must_be_asked_for(config, settings, account) -> None:
    address, password = account
    old = credentials.unlock(config, settings, address, password)
    with pytest.raises(InvalidInput, match="current password or the recovery key"):
        credentials.set_password(config, settings, address)
    with pytest.raises(AuthenticationFailed):
        credentials.set_password(config, settings, address, old_password="wrong")
    new = credentials.set_password(config, settings, address, reset_mailbox=True)
    fresh = credentials.unlock(config, settings, address, new)
    assert fresh.mailbox_id != old.mailbox_id
    assert not MailStore(settings.data_dir).mailbox_path(old.mailbox_id).exists()


def test_recovery_key(config, settings, account) -> None:
    address, password = account
    recovery = credentials.add_recovery_key(config, settings, address, password)
    new = credentials.set_password(config, settings, address, recovery_key=recovery)
    assert (
        credentials.unlock(config, settings, address, new).secrets
        == credentials.unlock(config, settings, address, new).secrets
    )
    with pytest.raises(AuthenticationFailed):
        credentials.set_password(config, settings, address, recovery_key="smrk1-" + "a" * 52)


def test_storage_turned_on_later_gets_keys_at_the_next_login(config, settings) -> None:
    from sealmail.services import domains

    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "late@example.test", recipients=["x@elsewhere.test"])
    password = credentials.set_password(config, settings, "late@example.test")
    with pytest.raises(AuthenticationFailed):  # no mailbox yet: nothing to unlock
        credentials.unlock(config, settings, "late@example.test", password)
    aliases.update_alias(config, "late@example.test", storage=True)
    unlocked = credentials.unlock(config, settings, "late@example.test", password)
    assert MailStore(settings.data_dir).mailbox_path(unlocked.mailbox_id).exists()
    assert credentials.unlock(config, settings, "late@example.test", password).secrets == unlocked.secrets


def test_disabled_alias_cannot_sign_in(config, settings, account) -> None:
    address, password = account
    aliases.update_alias(config, address, enabled=False)
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, address, password)


def test_unknown_alias_costs_as_much_as_a_wrong_password(config, settings, account) -> None:
    """No timing oracle for which addresses exist."""
    _address, _ = account
    settings = settings.model_copy(update={"argon2_time_cost": 2, "argon2_memory_kib": 32768})

    def timed(who: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed):
            credentials.verify(config, settings, who, "wrong-password")
        return time.perf_counter() - start

    unknown = min(timed("ghost@example.test") for _ in range(3))
    assert unknown > 0.01  # an Argon2 derivation ran


def test_removing_the_alias_removes_its_mailbox(config, settings, account) -> None:
    address, password = account
    unlocked = credentials.unlock(config, settings, address, password)
    path = MailStore(settings.data_dir).mailbox_path(unlocked.mailbox_id)
    assert path.exists()
    aliases.remove_alias(config, settings, address)
    assert not path.exists()
