"""A POP3 session's view of its maildrop (INBOX) and the exclusive lock on it.

Rules, which docs/protocols.md repeats:

* One POP3 session per mailbox at a time (RFC 1939 §8, "exclusive-access lock on the maildrop"): a
  second one, from any process on any front-end, is refused with ``-ERR [IN-USE]`` (RFC 2449 §8.1.2).
  The store grants the lock (``MailStoreAPI.lock_maildrop``): an ``flock`` on a file beside the
  mailbox, which the kernel releases if a process dies, taken by the data host's store for a remote
  front-end's session and released when that session or its connection ends.
* IMAP sessions are not locked out. The POP3 session works on a snapshot of INBOX taken at login:
  message numbers, sizes and unique ids stay fixed for the session (RFC 1939 §5). Mail that arrives
  later appears at the next login. A message that an IMAP client expunged meanwhile answers ``-ERR``
  to RETR and TOP and is skipped at UPDATE; flags set over IMAP change nothing for POP3.
* Nothing changes in the mailbox before QUIT: DELE only marks messages in this object, and a
  dropped or timed-out connection forgets the marks (RFC 1939 §6). At QUIT the marked messages are
  removed (or moved to Trash, per ``pop3_delete_mode``) in one transaction, and messages retrieved
  with RETR are flagged ``\\Seen`` so IMAP shows them read (as Dovecot does).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from sealmail.pop3 import wire
from sealmail.store.errors import FolderExists
from sealmail.store.exclusive import MaildropLock

__all__ = ["MaildropLock", "SessionMaildrop"]
from sealmail.store.model import INBOX

if TYPE_CHECKING:
    from sealmail.store.contract import MailboxHandle
    from sealmail.store.contract import MailboxOps as Mailbox

DeleteMode = Literal["remove", "trash"]


class NoSuchMessage(Exception):
    """The message number is not in the maildrop (or is not a number at all)."""


class MessageDeleted(Exception):
    """The message is marked as deleted in this session."""


class MessageGone(Exception):
    """Another session (IMAP) expunged the message after this session's login."""


class Message(NamedTuple):  # one per message at every login: a tuple is cheap to build
    number: int
    uid: int
    body_id: int
    size: int  # octets RETR sends (before byte-stuffing)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    removed: int
    left: int


@dataclass
class SessionMaildrop:
    """The messages of INBOX as of login, and what this session did to them."""

    handle: MailboxHandle
    uidvalidity: int
    messages: list[Message]
    utf8: bool
    deleted: set[int] = field(default_factory=set)
    retrieved: set[int] = field(default_factory=set)

    @classmethod
    async def load(cls, handle: MailboxHandle, *, utf8: bool) -> SessionMaildrop:
        uidvalidity, messages = await handle.run(_listing, handle.mailbox, utf8)
        return cls(handle, uidvalidity, messages, utf8)

    # ---- lookups --------------------------------------------------------------------------------
    def get(self, number: int) -> Message:
        if not 1 <= number <= len(self.messages):
            raise NoSuchMessage(number)
        if number in self.deleted:
            raise MessageDeleted(number)
        return self.messages[number - 1]

    def live(self) -> list[Message]:
        return [m for m in self.messages if m.number not in self.deleted]

    def stat(self) -> tuple[int, int]:
        """Messages not marked deleted and their octets (RFC 1939 §5 STAT)."""
        live = self.live()
        return len(live), sum(m.size for m in live)

    def unique_id(self, message: Message) -> str:
        return wire.unique_id(self.uidvalidity, message.uid)

    # ---- content --------------------------------------------------------------------------------
    async def content(self, message: Message) -> bytes:
        """The message as RETR sends it (CRLF, downgraded when needed), before byte-stuffing."""
        raw = await self.handle.run(_read_message, self.handle.mailbox, message.uid, message.body_id)
        if raw is None:
            raise MessageGone(message.number)
        return wire.wire_message(raw, utf8=self.utf8)

    # ---- changes --------------------------------------------------------------------------------
    def delete(self, number: int) -> None:
        self.get(number)
        self.deleted.add(number)

    def reset(self) -> None:
        self.deleted.clear()

    async def commit(self, mode: DeleteMode, expire_days: int | None) -> UpdateResult:
        """The UPDATE state (RFC 1939 §6): apply DELE marks, \\Seen flags and the EXPIRE policy."""
        doomed = {self.messages[n - 1].uid for n in self.deleted}
        retrieved = {self.messages[n - 1].uid for n in self.retrieved}
        if expire_days is not None:
            doomed |= await self._expired(expire_days, retrieved)
        seen = retrieved - doomed if mode == "remove" else retrieved
        if seen:
            await self.handle.store_flags(INBOX, sorted(seen), "add", ["\\Seen"])
        removed = 0
        if doomed:
            if mode == "trash":
                trash = await self.handle.run(_trash_folder, self.handle.mailbox)
                removed = len((await self.handle.move(INBOX, sorted(doomed), trash)).pairs)
            else:
                removed = len(await self.handle.remove(INBOX, sorted(doomed)))
        status = await self.handle.status(INBOX)
        return UpdateResult(removed, status.messages)

    async def _expired(self, days: int, retrieved: set[int]) -> set[int]:
        """EXPIRE (RFC 2449 §6.7): read messages (retrieved now, or \\Seen before) older than ``days``.

        The retention period counts from arrival, which the RFC allows; with 0 every message that has
        been read is removed at QUIT: the client cannot leave mail on the server.
        """
        cutoff = datetime.now(UTC) - timedelta(days=days)
        infos = await self.handle.messages(INBOX, [m.uid for m in self.messages])
        return {
            i.uid
            for i in infos
            if (i.uid in retrieved or "\\Seen" in i.flags) and (days == 0 or i.internal_date <= cutoff)
        }


def _listing(mailbox: Mailbox, utf8: bool) -> tuple[int, list[Message]]:
    """INBOX as this session sees it: sizes of the CRLF form, or of the ASCII-header form (RFC 6856)."""
    listing = mailbox.maildrop(INBOX)
    messages = [
        Message(n, e.uid, e.body_id, e.crlf_size if utf8 else e.ascii_size)
        for n, e in enumerate(listing.messages, start=1)
    ]
    return listing.uidvalidity, messages


def _read_message(mailbox: Mailbox, uid: int, body_id: int) -> bytes | None:
    """The stored bytes, or None when the message was expunged since login.

    Read first, check after: UIDs are never reused, so if the UID still exists with this body after
    the read, the body read was that message's (a freed body id may be reused, a UID never).
    """
    raw = mailbox.raw(body_id)
    found = mailbox.messages(INBOX, [uid])
    if not found or found[0].body_id != body_id:
        return None
    return raw


def _trash_folder(mailbox: Mailbox) -> str:
    """The folder with the \\Trash special use (RFC 6154), made when the user has none."""
    for folder in mailbox.list_folders():
        if folder.special_use == "\\Trash" and not folder.noselect:
            return folder.name
    with contextlib.suppress(FolderExists):
        return mailbox.create_folder("Trash", "\\Trash").name
    return "Trash"
