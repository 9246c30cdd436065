"""What a user does for their own alias: the self-service web area (``/account/``) and the API
with a token the user made (``/v1/me``) both call these (issue 22).

Who may: an enabled alias with a mailbox, signed in with its password (``Logins.unlock``: the same
derivation, pool, cache and lockout as an IMAP login). Anything that needs the mailbox keys asks
for the password again, because the keys are never kept between requests (not in the web session,
not in Redis): changing the password, making a recovery key, exporting the mail, turning two-factor
authentication on or off.

Two-factor authentication (RFC 6238, ``services.totp``) guards the web area only: mail programs
sign in to IMAP, POP3, SMTP and DAV with the password alone, as they cannot ask for a code. The
secret is sealed with a key derived from the mailbox key (``crypto.keys.seal_with_mailbox_key``),
so the config store alone, a stolen disk or a backup of it cannot produce codes; a sign-in, which
has the password and so the mailbox key, opens it. A mailbox reset (an administrator setting a new
password without the old one or the recovery key) starts a new mailbox key and drops it.

The rules editor (vacation reply, forwarding, filters, written as Sieve) is ``services.sieverules``,
over this module's ``Member``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.backup import mailboxcopy
from sealmail.crypto import keys
from sealmail.errors import AlreadyExists, InvalidInput, NotFound
from sealmail.services import admins, credentials, eventlog, tokens, totp
from sealmail.services.aliases import alias_address, get_alias, own_address
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.sessions import MailboxSession

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sealmail.backup.mailboxcopy import BackupCopy
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import Alias, AliasCredential, ApiToken
    from sealmail.services.eventlog import Actor
    from sealmail.settings import Settings
    from sealmail.store.contract import MailStoreAPI

TOTP_PURPOSE = "totp-secret"
MAX_TOKENS = 20  # live tokens per alias


@dataclass(frozen=True, slots=True)
class Member:
    """A signed-in alias, without its keys: what a web session or a user's token stands for."""

    alias: Alias
    credential: AliasCredential
    address: str  # as shown: the local part at the Unicode form of the domain

    @property
    def login(self) -> str:
        """The address the alias signs in with (its own name at its ASCII domain)."""
        return own_address(self.alias)

    @property
    def two_factor(self) -> bool:
        return self.credential.totp_secret is not None


def member(store: ConfigStore, alias_id: str) -> Member | None:
    """The alias as it is now, if it may use the self-service area (enabled, with its mailbox keys)."""
    try:
        alias = store.get_alias(alias_id)
    except NotFound:
        return None
    credential = store.get_credential(alias_id)
    if alias.kind != "exact" or not alias.enabled or not alias.storage or credential is None:
        return None
    if not credential.has_keys:  # a password set before the mailbox: the first sign-in makes the keys
        return None
    return Member(alias, credential, alias_address(store, alias))


def member_of(store: ConfigStore, unlocked: credentials.Unlocked) -> Member:
    return Member(unlocked.alias, unlocked.credential, alias_address(store, unlocked.alias))


def session_stamp(credential: AliasCredential) -> str:
    """What a web session remembers of the password it was opened with: a password changed anywhere
    (this area, the API, an administrator) changes it, and every session opened before signs in again."""
    return hashlib.sha256(b"sealmail-account-session\0" + credential.password_hash.encode()).hexdigest()[:32]


def actor_name(who: Member) -> str:
    return f"alias {who.address}"


# ---- two-factor authentication ------------------------------------------------------------------
def totp_secret(unlocked: credentials.Unlocked) -> str | None:
    """The alias's TOTP secret, opened with its mailbox key (None: two-factor is off)."""
    sealed = unlocked.credential.totp_secret
    if sealed is None:
        return None
    opened = keys.open_with_mailbox_key(unlocked.secrets.mailbox_key, sealed, unlocked.alias.id, TOTP_PURPOSE)
    return opened.decode("ascii")


def check_code(unlocked: credentials.Unlocked, code: str) -> int:
    """The time step of a right code (the caller refuses a step used before); else ``AuthenticationFailed``."""
    secret = totp_secret(unlocked)
    found = totp.step(secret, code) if secret else None
    if found is None:
        raise AuthenticationFailed()
    return found


def enable_totp(store: ConfigStore, unlocked: credentials.Unlocked, secret: str, code: str, actor: Actor) -> None:
    """Turn two-factor on once the user proved their app has ``secret`` (``InvalidInput`` otherwise)."""
    if unlocked.credential.totp_secret is not None:
        raise AlreadyExists("two-factor authentication is on already")
    if totp.step(secret, code) is None:
        raise InvalidInput("that code is not the current one: check the app and the device's clock, then try again")
    sealed = keys.seal_with_mailbox_key(
        unlocked.secrets.mailbox_key, secret.encode("ascii"), unlocked.alias.id, TOTP_PURPOSE
    )
    store.set_alias_totp(unlocked.alias.id, sealed)
    _audit(store, actor, unlocked, "account.totp-enable")


def disable_totp(store: ConfigStore, unlocked: credentials.Unlocked, code: str, actor: Actor) -> None:
    """Turn two-factor off with a current code (``AuthenticationFailed`` when it is wrong)."""
    check_code(unlocked, code)
    store.set_alias_totp(unlocked.alias.id, None)
    _audit(store, actor, unlocked, "account.totp-disable")


def turn_off_two_factor(store: ConfigStore, address: str, actor: Actor) -> str:
    """An administrator turns an alias's second factor off (its user lost the app): no code needed,
    nothing to open. The web admin, the API and ``sealmail alias two-factor-off`` all call this;
    turning it off is one audit entry (none when it was off already). Returns the address as shown."""
    alias = get_alias(store, address)
    credential = store.get_credential(alias.id)
    if credential is not None and credential.totp_secret is not None:
        store.set_alias_totp(alias.id, None)
        eventlog.record(store, actor, "alias.two-factor-off", domain=alias.domain, address=own_address(alias))
    return alias_address(store, alias)


# ---- password and recovery key ----------------------------------------------------------------------
def change_password(
    store: ConfigStore, settings: Settings, who: Member, current: str, new: str, confirm: str | None, actor: Actor
) -> None:
    """Re-wrap the mailbox keys with ``new``. ``AuthenticationFailed`` when ``current`` is wrong,
    ``InvalidInput`` when ``new`` breaks the rules. Every session signed in with the old password
    ends, on every process, and the user's API tokens are revoked (``credentials.set_password``)."""
    admins.check_password_rules(new, confirm)
    if new == current:
        raise InvalidInput("the new password is the current one")
    credentials.set_password(store, settings, who.login, old_password=current, new_password=new, actor=actor)
    eventlog.record(store, actor, "account.password", domain=who.alias.domain, address=who.address)


def new_recovery_key(store: ConfigStore, unlocked: credentials.Unlocked, actor: Actor) -> str:
    """A new recovery key (shown once): the keys are wrapped with it instead of the old one, which
    stops working."""
    made = credentials.new_recovery_key(store, unlocked)
    _audit(store, actor, unlocked, "account.recovery-key")
    return made


# ---- quota ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Usage:
    stored: int  # octets in the mailbox as its last session left it
    waiting: int  # sealed octets delivered since, not yet moved into the mailbox
    limit: int

    @property
    def used(self) -> int:
        return self.stored + self.waiting

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0


def usage(store: ConfigStore, settings: Settings, mailstore: MailStoreAPI, who: Member) -> Usage:
    """Used and allowed octets, as the MX counts them for its quota check (no key needed)."""
    credential = store.get_credential(who.alias.id) or who.credential
    assert credential.mailbox_id is not None
    return Usage(
        credential.usage_bytes or 0,
        mailstore.spool_size(credential.mailbox_id),
        credentials.quota_of(who.alias, settings),
    )


# ---- the user's own API tokens -------------------------------------------------------------------------
def list_tokens(store: ConfigStore, who: Member) -> list[ApiToken]:
    return store.list_alias_tokens(who.alias.id)


def create_token(store: ConfigStore, who: Member, name: str, actor: Actor) -> tuple[ApiToken, str]:
    """A token for ``/v1/me`` (its secret is returned once)."""
    live = [t for t in store.list_alias_tokens(who.alias.id) if t.revoked_at is None]
    if len(live) >= MAX_TOKENS:
        raise InvalidInput(f"an address may have at most {MAX_TOKENS} tokens: revoke one first")
    made, secret = tokens.create_alias_token(store, who.alias.id, name)
    eventlog.record(
        store, actor, "account.token-create", domain=who.alias.domain, address=who.address, detail=made.name
    )
    return made, secret


def revoke_token(store: ConfigStore, who: Member, token_id: str, actor: Actor) -> ApiToken:
    """Revoke one of the alias's own tokens (``NotFound`` for any other token)."""
    found = next((t for t in store.list_alias_tokens(who.alias.id) if t.id == token_id), None)
    if found is None:
        raise NotFound(f"API token {token_id} does not exist")
    revoked = store.revoke_token(found.id)
    eventlog.record(
        store, actor, "account.token-revoke", domain=who.alias.domain, address=who.address, detail=found.name
    )
    return revoked


def _audit(store: ConfigStore, actor: Actor, unlocked: credentials.Unlocked, action: str, detail: str = "") -> None:
    address = alias_address(store, unlocked.alias)
    eventlog.record(store, actor, action, domain=unlocked.alias.domain, address=address, detail=detail)


# ---- take your mail with you ----------------------------------------------------------------------------
async def open_mailbox(
    store: ConfigStore, settings: Settings, mailstore: MailStoreAPI, unlocked: credentials.Unlocked
) -> MailboxSession:
    """The mailbox, opened with the keys a sign-in unwrapped (its waiting mail drained first, as
    every login does); ``close()`` it when done (``StoreUnavailable`` when the data host is away)."""
    handle = await mailstore.open(
        unlocked.mailbox_id, unlocked.secrets, quota=credentials.quota_of(unlocked.alias, settings)
    )
    return MailboxSession(unlocked, handle, store)


def export_started(store: ConfigStore, unlocked: credentials.Unlocked, fmt: str, actor: Actor) -> None:
    _audit(store, actor, unlocked, "account.export", detail=fmt)


def latest_backup(settings: Settings, who: Member) -> BackupCopy | None:
    """The mailbox in the newest backup run (None: there is none yet); ``BackupError`` when this
    server keeps no backups it can read."""
    assert who.credential.mailbox_id is not None
    return mailboxcopy.latest_copy(settings, who.credential.mailbox_id)


def backup_archive(
    store: ConfigStore, settings: Settings, who: Member, copy: BackupCopy, actor: Actor
) -> Iterator[bytes]:
    """The zip of the backup's encrypted files, ``keys.json`` and how to open them (blocking)."""
    credential = store.get_credential(who.alias.id) or who.credential
    eventlog.record(
        store, actor, "account.backup-download", domain=who.alias.domain, address=who.address, detail=copy.run
    )
    return mailboxcopy.archive(settings, copy, mailboxcopy.key_file(who.alias.id, credential))
