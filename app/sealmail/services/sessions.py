"""Signing in to a mailbox from a protocol server (IMAP, POP3, DAV, web).

One Argon2id derivation off the event loop (``services.logins``: on its own pool, or none when the
same password signed in moments ago) unwraps the keys; the shared mailbox handle is opened with
them and its sealed spool drained. The keys live in the session's memory only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.services import credentials, revocation

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.config.models import AliasCredential
    from sealmail.services.logins import Logins
    from sealmail.services.revocation import RevocationBus
    from sealmail.store.contract import MailboxHandle, MailStoreAPI


@dataclass
class MailboxSession:
    unlocked: credentials.Unlocked
    mailbox: MailboxHandle
    _config: ConfigStore

    @property
    def address(self) -> str:
        return f"{self.unlocked.alias.name}@{self.unlocked.alias.domain}"

    async def close(self) -> None:
        """Record the mailbox's size for the MX's quota checks, then let go of the handle."""
        try:
            usage = await self.mailbox.usage()
            await asyncio.to_thread(self._config.record_usage, self.unlocked.alias.id, usage)
        finally:
            await self.mailbox.release()


async def sign_in(
    logins: Logins, config: ConfigStore, mailstore: MailStoreAPI, address: str, password: str
) -> MailboxSession:
    """Raises ``AuthenticationFailed`` (the same for unknown address and wrong password)."""
    unlocked = await logins.unlock(config, address, password)
    handle = await mailstore.open(
        unlocked.mailbox_id, unlocked.secrets, quota=credentials.quota_of(unlocked.alias, logins.settings)
    )
    return MailboxSession(unlocked, handle, config)


async def guard(
    revocations: RevocationBus,
    config: ConfigStore,
    credential: AliasCredential,
    on_revoked: revocation.Callback,
    *,
    needs_mailbox: bool = True,
) -> revocation.Watch | None:
    """Have ``on_revoked`` called when the account's sessions must end (``services.revocation``).

    Registers first, then re-reads the credential: a change made between the password check and
    the registration is caught too. None (nothing registered) when the credential is no longer the
    one signed in with: the caller ends the session at once.
    """

    def recheck() -> bool:
        return credentials.still_current(config, credential, needs_mailbox=needs_mailbox)

    watch = await revocations.watch(credential.alias_id, on_revoked, recheck)
    try:
        current = await asyncio.to_thread(recheck)
    except BaseException:
        watch.cancel()
        raise
    if not current:
        watch.cancel()
        return None
    return watch
