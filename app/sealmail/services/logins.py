"""Password checks for the protocol servers: spread over the cores, bounded, and remembered briefly.

Every login costs one Argon2id derivation (~80–120 ms of one core). Two things follow:

* A storm (a thousand clients reconnecting after a restart or a failover) should use every core
  without starving the sessions already open. Derivations run on a pool of their own, one thread
  per core by default (``settings.kdf_concurrency``; argon2's C code lets go of the GIL, so they
  run side by side); logins beyond that wait their turn in its queue instead of filling the pool
  that open sessions' database work runs on.
* Clients that sign in for every request (webmails open an IMAP connection per page) should not
  pay a derivation each time. A successful check is remembered in this process's memory for
  ``settings.auth_cache_seconds`` (as Dovecot's auth cache does; 0 turns it off), found again by
  the account and a keyed hash of the password (the key is random per process, the password itself
  is never kept), and used only while the account's credential is still the one it was made under:
  each hit re-reads it from the config store (cheap, no KDF), so a changed password, a new mailbox
  or a disabled alias misses, and a revocation from any process (``services.revocation``) drops
  the account's entries as it arrives. Nothing here is written to disk; a wrong password is never
  remembered and always costs a full derivation, so a hit tells a guesser nothing.

What an entry holds is what a signed-in session holds anyway: the unwrapped mailbox keys (for
IMAP, POP3, DAV) or only the verified credential (SMTP submission).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sealmail.services import credentials

if TYPE_CHECKING:
    from collections.abc import Callable

    from sealmail.config.base import ConfigStore
    from sealmail.config.models import Alias, AliasCredential
    from sealmail.services.revocation import RevocationBus, Revoked, Watch
    from sealmail.settings import Settings

T = TypeVar("T")
MAX_ENTRIES = 10_000  # accounts x passwords remembered at once; the oldest go first


@dataclass(frozen=True, slots=True)
class _Entry:
    credential: AliasCredential  # what the password was checked against
    unlocked: credentials.Unlocked | None  # with the keys (a mailbox login); None: checked only
    expires: float  # time.monotonic()


class Logins:
    """One per process (``AppContext.logins``); used on its event loop only."""

    def __init__(self, settings: Settings, revocations: RevocationBus | None = None) -> None:
        self.settings = settings
        self.ttl = settings.auth_cache_seconds
        workers = settings.kdf_concurrency or os.cpu_count() or 1
        self._kdf = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sealmail-kdf")
        self._key = secrets.token_bytes(32)
        self._entries: dict[tuple[str, bytes], _Entry] = {}
        self._revocations = revocations
        self._watch: Watch | None = None
        self._listening: asyncio.Task[None] | None = None
        self.hits = self.derivations = 0  # for `sealmail status`-style counters and tests

    async def unlock(self, config: ConfigStore, address: str, password: str) -> credentials.Unlocked:
        """``credentials.unlock``: the account's keys, from memory when this password was just checked.

        Raises ``AuthenticationFailed`` as ``credentials.unlock`` does."""
        found = await self._lookup(config, address, password)
        if found is not None:
            alias, credential, entry = found
            if entry.unlocked is not None and alias.storage:
                self.hits += 1
                return credentials.Unlocked(alias, credential, entry.unlocked.secrets)
        unlocked = await self._derive(credentials.unlock, config, self.settings, address, password)
        self._remember(unlocked.credential, password, unlocked)
        return unlocked

    async def check(self, config: ConfigStore, address: str, password: str) -> tuple[Alias, AliasCredential]:
        """``credentials.check`` (a password, no keys: SMTP submission), remembered the same way."""
        found = await self._lookup(config, address, password)
        if found is not None:
            self.hits += 1
            return found[0], found[1]
        alias, credential = await self._derive(credentials.check, config, self.settings, address, password)
        self._remember(credential, password, None)
        return alias, credential

    def forget(self, alias_id: str) -> None:
        for key in [k for k in self._entries if k[0] == alias_id]:
            del self._entries[key]

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._entries.clear()
        self._kdf.shutdown(wait=False, cancel_futures=True)

    # ---- internals ------------------------------------------------------------------------------
    async def _derive(self, fn: Callable[..., T], *args: object) -> T:
        self.derivations += 1
        return await asyncio.get_running_loop().run_in_executor(self._kdf, fn, *args)

    def _digest(self, password: str) -> bytes:
        return hashlib.blake2b(password.encode("utf-8"), key=self._key, digest_size=32).digest()

    async def _lookup(
        self, config: ConfigStore, address: str, password: str
    ) -> tuple[Alias, AliasCredential, _Entry] | None:
        """The account as it is now and the entry for this password, if it is still good."""
        if self.ttl <= 0 or not self._entries:
            return None
        found = await asyncio.to_thread(credentials.find, config, address)
        if found is None:
            return None
        alias, credential = found
        key = (alias.id, self._digest(password))
        entry = self._entries.get(key)
        if entry is None:
            return None
        then = entry.credential
        if (
            time.monotonic() >= entry.expires
            or credential.password_hash != then.password_hash
            or credential.mailbox_id != then.mailbox_id
            or credential.key_mailbox != then.key_mailbox
        ):
            del self._entries[key]
            return None
        return alias, credential, entry

    def _remember(self, credential: AliasCredential, password: str, unlocked: credentials.Unlocked | None) -> None:
        if self.ttl <= 0:
            return
        self._listen()
        now = time.monotonic()
        if len(self._entries) >= MAX_ENTRIES:
            for key in [k for k, e in self._entries.items() if now >= e.expires]:
                del self._entries[key]
            while len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
        key = (credential.alias_id, self._digest(password))
        self._entries.pop(key, None)  # re-inserted last: the dict's order is the eviction order
        self._entries[key] = _Entry(credential, unlocked, now + self.ttl)

    def _listen(self) -> None:
        """Drop an account's entries when any process revokes its sessions (first remembered entry on)."""
        if self._revocations is None or self._listening is not None:
            return
        self._listening = asyncio.get_running_loop().create_task(self._register(self._revocations))

    async def _register(self, bus: RevocationBus) -> None:
        self._watch = await bus.watch(None, self._on_revoked)

    def _on_revoked(self, event: Revoked) -> None:
        self.forget(event.account_id)
