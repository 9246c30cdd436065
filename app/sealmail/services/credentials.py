"""Passwords and mailbox keys: the only place that turns a password into keys.

See ``sealmail.crypto.keys`` for the hierarchy. An admin can set a new password for an alias, but
the server cannot unwrap a mailbox's keys without the current password or the recovery key: a
reset without either starts a new, empty mailbox (and deletes the unreadable old one), and only
when asked to explicitly. A new password, set any way, ends the sessions and the user's API tokens
the old one let in (``set_password``).
"""

from __future__ import annotations

import logging
import secrets as pysecrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sealmail.config.models import Alias, AliasCredential, now
from sealmail.crypto import keys, scram
from sealmail.crypto.passwords import generate_password, hash_password, verify_password
from sealmail.errors import InvalidInput, NotFound, SealmailError
from sealmail.services import eventlog, mailboxes, revocation
from sealmail.services.aliases import get_alias, own_address

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.services.eventlog import Actor
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.credentials")


class AuthenticationFailed(SealmailError):
    """Wrong address or password. Deliberately says nothing about which."""

    def __init__(self) -> None:
        super().__init__("authentication failed")


@dataclass(frozen=True, slots=True)
class Unlocked:
    """A signed-in alias with its keys unwrapped (process memory only)."""

    alias: Alias
    credential: AliasCredential
    secrets: keys.MailboxSecrets

    @property
    def mailbox_id(self) -> str:
        assert self.credential.mailbox_id is not None
        return self.credential.mailbox_id


def kdf_params(settings: Settings) -> keys.KdfParams:
    return keys.KdfParams(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


def quota_of(alias: Alias, settings: Settings) -> int:
    return alias.quota if alias.quota is not None else settings.default_quota


def _with_password_wrap(credential: AliasCredential, wrapped: keys.WrappedKeys) -> AliasCredential:
    return replace(
        credential,
        key_salt=wrapped.salt,
        key_kdf=wrapped.kdf,
        key_mailbox=wrapped.mailbox_key,
        key_private=wrapped.private_key,
    )


def _password_wrap(credential: AliasCredential) -> keys.WrappedKeys:
    assert credential.key_salt
    assert credential.key_kdf
    assert credential.key_mailbox
    assert credential.key_private
    return keys.WrappedKeys(credential.key_salt, credential.key_kdf, credential.key_mailbox, credential.key_private)


def scram_verifiers(settings: Settings, password: str) -> str | None:
    """SCRAM verifiers of ``password`` for ManageSieve (``crypto.scram``), or None when SCRAM is off."""
    return scram.make(password, settings.scram_iterations) if settings.managesieve_scram else None


def _keep_scram_current(store: ConfigStore, settings: Settings, credential: AliasCredential, password: str) -> None:
    """After a good password: make the alias's SCRAM verifiers if it has none yet (passwords set
    before SCRAM existed) or they were made with another iteration count. Written only while the
    password is still the one checked."""
    if not settings.managesieve_scram or scram.iterations_of(credential.scram) == settings.scram_iterations:
        return
    made = scram_verifiers(settings, password)
    if made is not None and store.set_scram_verifiers(credential.alias_id, credential.password_hash, made):
        credential.scram = made


def _new_mailbox(
    store: ConfigStore, settings: Settings, alias: Alias, password: str, verifier: str, scram_text: str | None
) -> AliasCredential:
    """Fresh keys, a new empty mailbox file, the keys wrapped with ``password``; the alias's stored
    credential must be ``verifier`` without a mailbox.

    Mail clients open several connections at their first sync, so several first sign-ins can get
    here at once. The config store's compare-and-set (``claim_mailbox``) lets exactly one mailbox
    win; every other one deletes the file it made and returns the winner's credential, whose keys
    its password (checked against the same verifier) unwraps. Raises ``AuthenticationFailed`` when
    the password changed meanwhile.
    """
    found, public = keys.new_secrets()
    mailbox_id = pysecrets.token_hex(12)
    mailboxes.create(store, settings, mailbox_id, found.mailbox_key)
    wrapped = keys.wrap_with_password(found, password, alias.id, kdf_params(settings))
    credential = _with_password_wrap(
        AliasCredential(
            alias_id=alias.id, password_hash=verifier, mailbox_id=mailbox_id, public_key=public, scram=scram_text
        ),
        wrapped,
    )
    try:
        won = store.claim_mailbox(credential)
    except BaseException:
        mailboxes.delete(store, settings, mailbox_id)
        raise
    if won:
        return credential
    mailboxes.delete(store, settings, mailbox_id)
    current = store.get_credential(alias.id)
    if current is None or not current.has_keys or current.password_hash != verifier:
        raise AuthenticationFailed()
    return current


def set_password(
    store: ConfigStore,
    settings: Settings,
    address: str,
    *,
    old_password: str | None = None,
    recovery_key: str | None = None,
    reset_mailbox: bool = False,
    new_password: str | None = None,
    actor: Actor | None = None,
) -> str:
    """Give an alias a new (generated) password and return it; it is shown once.

    For an alias whose mailbox already has keys, those keys are re-wrapped: that needs the current
    password or the recovery key. ``reset_mailbox`` instead deletes the old mailbox (unreadable
    without them) and starts an empty one.

    Every way of setting a password comes here, so this is where what the old password opened ends:
    the sessions signed in with it, and the API tokens the alias's user made (``/v1/me``). ``actor``
    (who asks) names the audit entry of that revocation; without one (tools, tests) only the
    process log says it.
    """
    alias = get_alias(store, address)
    if alias.kind != "exact":
        raise InvalidInput("only a named alias can sign in; catch-all and regex aliases have no password")
    password = _set_password(store, settings, address, alias, old_password, recovery_key, reset_mailbox, new_password)
    # Sessions signed in under the old password end now, on every process (issue 16).
    revocation.announce(settings, alias.id, revocation.PASSWORD_CHANGED)
    _revoke_user_tokens(store, alias, actor)
    return password


def _revoke_user_tokens(store: ConfigStore, alias: Alias, actor: Actor | None) -> None:
    """Issue 22: a password is changed by someone who fears it is known; a token made with it (by the
    user or whoever had the password) must not outlive it. Administrators' tokens are not the alias's."""
    from sealmail.services import tokens  # services.tokens imports this module

    revoked = tokens.revoke_alias_tokens(store, alias.id)
    if not revoked:
        return
    count = f"{len(revoked)} API token{'s' if len(revoked) != 1 else ''}"
    log.info("alias %s: %s of its user revoked, as its password changed", alias.id, count)
    if actor is not None:
        names = ", ".join(t.name for t in revoked)
        detail = f"{count} the user made ({names}), as the password changed"
        eventlog.record(
            store, actor, "alias.tokens-revoke", domain=alias.domain, address=own_address(alias), detail=detail
        )


def _set_password(
    store: ConfigStore,
    settings: Settings,
    address: str,
    alias: Alias,
    old_password: str | None,
    recovery_key: str | None,
    reset_mailbox: bool,
    new_password: str | None,
) -> str:
    password = new_password or generate_password()
    verifier = hash_password(settings, password)
    scram_text = scram_verifiers(settings, password)
    current = store.get_credential(alias.id)
    if current is not None and current.has_keys:
        if old_password is not None:
            found = _unwrap_password(current, old_password, alias.id)
        elif recovery_key is not None:
            found = _unwrap_recovery(current, recovery_key, alias.id)
        elif reset_mailbox:
            assert current.mailbox_id is not None
            mailboxes.delete(store, settings, current.mailbox_id)
            store.set_credential(AliasCredential(alias_id=alias.id, password_hash=verifier, scram=scram_text))
            if alias.storage:
                _new_mailbox(store, settings, alias, password, verifier, scram_text)
            return password
        else:
            raise InvalidInput(
                f"{address} has an encrypted mailbox: its keys can only be re-wrapped with the current password "
                "or the recovery key; resetting instead deletes the mailbox and starts an empty one"
            )
        wrapped = keys.wrap_with_password(found, password, alias.id, kdf_params(settings))
        changed = replace(current, password_hash=verifier, scram=scram_text, updated_at=now())
        store.set_credential(_with_password_wrap(changed, wrapped))
        return password
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash=verifier, scram=scram_text))
    if alias.storage:
        _new_mailbox(store, settings, alias, password, verifier, scram_text)
    return password


def _unwrap_password(credential: AliasCredential, password: str, alias_id: str) -> keys.MailboxSecrets:
    try:
        return keys.unwrap_with_password(_password_wrap(credential), password, alias_id)
    except keys.WrongPassword:
        raise AuthenticationFailed() from None


def _unwrap_recovery(credential: AliasCredential, recovery_key: str, alias_id: str) -> keys.MailboxSecrets:
    if not (credential.recovery_salt and credential.recovery_mailbox and credential.recovery_private):
        raise InvalidInput("this alias has no recovery key")
    wrapped = keys.WrappedKeys(
        credential.recovery_salt, "recovery", credential.recovery_mailbox, credential.recovery_private
    )
    try:
        return keys.unwrap_with_recovery_key(wrapped, recovery_key, alias_id)
    except keys.WrongPassword:
        raise AuthenticationFailed() from None


def add_recovery_key(store: ConfigStore, settings: Settings, address: str, password: str) -> str:
    """Wrap the mailbox keys a second time with a new recovery key and return it (shown once)."""
    return new_recovery_key(store, unlock(store, settings, address, password))


def new_recovery_key(store: ConfigStore, unlocked: Unlocked) -> str:
    """``add_recovery_key`` for keys a session unwrapped already: the new key replaces the old one,
    which stops working."""
    current = store.get_credential(unlocked.alias.id)
    if current is None or current.mailbox_id != unlocked.credential.mailbox_id:
        raise AuthenticationFailed()  # the mailbox was reset meanwhile: these keys no longer open it
    recovery = keys.new_recovery_key()
    wrapped = keys.wrap_with_recovery_key(unlocked.secrets, recovery, unlocked.alias.id)
    store.set_credential(
        replace(
            current,
            recovery_salt=wrapped.salt,
            recovery_mailbox=wrapped.mailbox_key,
            recovery_private=wrapped.private_key,
            updated_at=now(),
        )
    )
    return recovery


_DUMMY_SALT = b"\x00" * keys.SALT_BYTES


def find(store: ConfigStore, address: str) -> tuple[Alias, AliasCredential] | None:
    """The enabled exact alias at ``address`` and its credential, or None. No KDF."""
    try:
        alias = get_alias(store, address)
    except (InvalidInput, NotFound):
        return None
    if alias.kind != "exact" or not alias.enabled:
        return None
    credential = store.get_credential(alias.id)
    return (alias, credential) if credential is not None else None


def verify(store: ConfigStore, settings: Settings, address: str, password: str) -> Alias:
    """Check a password without unwrapping keys (SMTP submission). Raises ``AuthenticationFailed``."""
    return check(store, settings, address, password)[0]


def check(store: ConfigStore, settings: Settings, address: str, password: str) -> tuple[Alias, AliasCredential]:
    """``verify``, also returning the credential the password matched (``still_current`` compares with it)."""
    found = find(store, address)
    if found is None:
        keys.derive_kek(password, _DUMMY_SALT, kdf_params(settings))  # same cost as a real check
        raise AuthenticationFailed()
    alias, credential = found
    if not verify_password(settings, credential.password_hash, password):
        raise AuthenticationFailed()
    _keep_scram_current(store, settings, credential, password)
    return alias, credential


def still_current(store: ConfigStore, credential: AliasCredential, *, needs_mailbox: bool = True) -> bool:
    """Whether a session signed in under ``credential`` may go on: the alias exists and is enabled
    (with its mailbox when ``needs_mailbox``), and its password and mailbox are the ones signed in with.
    No KDF: a cheap read, made after a session registers for revocations (``services.revocation``)."""
    try:
        alias = store.get_alias(credential.alias_id)
    except NotFound:
        return False
    current = store.get_credential(credential.alias_id)
    return bool(
        alias.enabled
        and (alias.storage or not needs_mailbox)
        and current is not None
        and current.password_hash == credential.password_hash
        and (current.mailbox_id == credential.mailbox_id or not needs_mailbox)
    )


def unlock(store: ConfigStore, settings: Settings, address: str, password: str) -> Unlocked:
    """Sign in to a mailbox: one Argon2id derivation, then the keys unwrap (or the password is wrong).

    An alias given storage after its password was set gets its keys now, from this password.
    """
    found = find(store, address)
    if found is None or not found[0].storage:
        keys.derive_kek(password, _DUMMY_SALT, kdf_params(settings))
        raise AuthenticationFailed()
    alias, credential = found
    if not credential.has_keys:
        if not verify_password(settings, credential.password_hash, password):
            raise AuthenticationFailed()
        credential = _new_mailbox(store, settings, alias, password, credential.password_hash, credential.scram)
    secrets = _unwrap_password(credential, password, alias.id)
    _keep_scram_current(store, settings, credential, password)
    return Unlocked(alias, credential, secrets)
