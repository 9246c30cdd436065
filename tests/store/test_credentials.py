"""Passwords, unlocking and re-wrapping through the service layer."""

from __future__ import annotations

import time

import pytest

from sealmail.errors import InvalidInput
from sealmail.services import aliases, credentials
from sealmail.services.credentials import AuthenticationFailed
from sealmail.store.mailstore import MailStore

from mailgen import message
from privacyscan import Secrets, assert_no_secrets


def _deliver_and_drain(config, settings, address: str, password: str, subject: str, body: str) -> None:
    """The MX's path (seal to the public key into the spool), then a login's (unlock, drain)."""
    name, _, domain = address.partition("@")
    alias = config.find_alias(domain, "exact", name)
    credential = config.get_credential(alias.id)
    store = MailStore(settings.data_dir)
    store.deliver(credential.mailbox_id, credential.public_key, message(1, subject=subject, body=body + "\r\n"))
    unlocked = credentials.unlock(config, settings, address, password)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        assert box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key).drained == 1
    finally:
        box.close()


def _read_all(config, settings, address: str, password: str) -> list[bytes]:
    """Unlock with ``password``, drain whatever waits sealed, read INBOX (what IMAP does at login)."""
    unlocked = credentials.unlock(config, settings, address, password)
    store = MailStore(settings.data_dir)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key)
        return [box.raw(i.body_id) for i in box.messages("INBOX")]
    finally:
        box.close()


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
    _deliver_and_drain(config, settings, address, password, "Subject-Kept-Gecko-1184", "Body-Kept-Bassoon-5502")
    before = credentials.unlock(config, settings, address, password)
    new = credentials.set_password(config, settings, address, old_password=password)
    after = credentials.unlock(config, settings, address, new)
    assert after.secrets.mailbox_key == before.secrets.mailbox_key
    assert after.secrets.private_key == before.secrets.private_key
    assert after.mailbox_id == before.mailbox_id
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, address, password)
    with pytest.raises(AuthenticationFailed):
        credentials.verify(config, settings, address, password)
    assert credentials.verify(config, settings, address, new).name == "rémi"
    (kept,) = _read_all(config, settings, address, new)
    assert b"Subject-Kept-Gecko-1184" in kept
    assert b"Body-Kept-Bassoon-5502" in kept
    # Neither password, nor a key, nor the message is anywhere under the data directory.
    assert_no_secrets(
        settings.data_dir,
        Secrets()
        .password("old password", password)
        .password("new password", new)
        .unlocked(address, after)
        .text("subject", "Subject-Kept-Gecko-1184")
        .text("body", "Body-Kept-Bassoon-5502"),
    )


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


def test_recovery_key_rewraps_the_same_keys_and_old_mail_stays_readable(config, settings, account) -> None:
    """DESIGN §4: the recovery key wraps the mailbox's own keys a second time; a new password set
    with it opens the old mailbox (drained mail: the same mailbox key) and the old spool (sealed
    mail: the same private key)."""
    address, password = account
    _deliver_and_drain(config, settings, address, password, "Subject-Drained-Lemur-7310", "Body-Drained-Cello-2291")
    alias = config.find_alias("example.test", "exact", "rémi")
    credential = config.get_credential(alias.id)
    waiting = message(2, subject="Subject-Sealed-Tapir-6402", body="Body-Sealed-Zither-1937\r\n")
    MailStore(settings.data_dir).deliver(credential.mailbox_id, credential.public_key, waiting)
    before = credentials.unlock(config, settings, address, password)
    recovery = credentials.add_recovery_key(config, settings, address, password)

    new = credentials.set_password(config, settings, address, recovery_key=recovery)
    after = credentials.unlock(config, settings, address, new)
    assert after.secrets.mailbox_key == before.secrets.mailbox_key
    assert after.secrets.private_key == before.secrets.private_key
    assert after.mailbox_id == before.mailbox_id
    assert after.credential.public_key == before.credential.public_key
    with pytest.raises(AuthenticationFailed):
        credentials.unlock(config, settings, address, password)
    drained, sealed = _read_all(config, settings, address, new)
    assert b"Subject-Drained-Lemur-7310" in drained
    assert b"Body-Drained-Cello-2291" in drained
    assert sealed == waiting
    assert_no_secrets(
        settings.data_dir,
        Secrets()
        .password("old password", password)
        .password("new password", new)
        .password("recovery key", recovery)
        .unlocked(address, after)
        .text("subject", "Subject-Drained-Lemur-7310")
        .text("subject", "Subject-Sealed-Tapir-6402")
        .text("body", "Body-Drained-Cello-2291")
        .text("body", "Body-Sealed-Zither-1937"),
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
