"""What the IMAP sessions of one process remember together, owned by the IMAP server.

One ``ImapCaches`` per process (``server.ImapComponent`` makes it and hands it to every session
through ``Options``); a session built without one gets its own. It holds, per mailbox (the
in-process store hands every session of an account the same handle; the remote store, a handle per
session: the entry is shared by every handle on the mailbox and goes with the last of them):

* ``claimed``: the highest UID per folder that some session of this process claimed \\Recent for;
* ``texts``: ENVELOPE and BODYSTRUCTURE answers already written, by (item, body id, UTF-8 on). A body
  never changes, so they stay right; they live as long as the unlocked mailbox (like SQLite's page
  cache of the decrypted file) and spare the store and the serialiser when clients list a folder again;
* ``folders``: every message's metadata of recently listed folders, valid at a HIGHESTMODSEQ.
  "FETCH 1:* (FLAGS)" again then costs one folder lookup plus what changed since (RFC 7162 keeps it
  honest: every append, flag change and expunge raises the folder's MODSEQ);
* ``orders``: the last few SORT and THREAD results (``imap.sorting``), by the folder's view at a
  MODSEQ and the command's program: webmails sort and thread the same folder on every page, and
  often from a new session each time.

and, for every mailbox alike, the flag lists already formatted.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sealmail.imap import wire
from sealmail.store.mailbox import SYSTEM_FLAGS, MessageInfo

if TYPE_CHECKING:
    from sealmail.store.contract import MailboxHandle
    from sealmail.store.contract import MailboxOps as Mailbox

TEXT_CACHE_ENTRIES = 100_000
INFO_CACHE_FOLDERS = 4
FLAG_CACHE_ENTRIES = 10_000
SYSTEM_ORDER = tuple(SYSTEM_FLAGS)


@dataclass(slots=True)
class FolderInfos:
    folder_id: int
    uidvalidity: int
    modseq: int
    infos: list[MessageInfo]


@dataclass(slots=True, weakref_slot=True)
class MailboxCaches:
    """The caches of one mailbox, shared by its handles in this process."""

    claimed: dict[int, int] = field(default_factory=dict)
    texts: dict[tuple[str, int, bool], str] = field(default_factory=dict)
    folders: dict[str, FolderInfos] = field(default_factory=dict)
    orders: dict[tuple[object, ...], object] = field(default_factory=dict)


class ImapCaches:
    """Per process: the caches of every open mailbox, and the formatted flag lists."""

    def __init__(self) -> None:
        self._mailboxes: weakref.WeakKeyDictionary[MailboxHandle, MailboxCaches] = weakref.WeakKeyDictionary()
        # By mailbox id, for handles of a mailbox whose caches another handle already holds (a remote
        # store opens one per session): without it, a thousand IDLE sessions on a front-end each
        # claimed \Recent from the data host for every new message.
        self._by_id: weakref.WeakValueDictionary[str, MailboxCaches] = weakref.WeakValueDictionary()
        self._flag_lists: dict[tuple[frozenset[str], bool, bool], bytes] = {}
        self._flag_texts: dict[tuple[frozenset[str], bool], str] = {}

    def of(self, mbox: MailboxHandle) -> MailboxCaches:
        caches = self._mailboxes.get(mbox)
        if caches is None:
            caches = self._by_id.get(mbox.mailbox_id)
            if caches is None:
                caches = self._by_id[mbox.mailbox_id] = MailboxCaches()
            self._mailboxes[mbox] = caches
        return caches

    def flag_list(self, flags: frozenset[str], recent: bool, utf8: bool) -> bytes:
        """``(\\Seen $Label ...)`` as the wire wants it: system flags first, keywords sorted, then \\Recent."""
        key = (flags, recent, utf8)
        cached = self._flag_lists.get(key)
        if cached is None:
            cached = wire.flag_list(_ordered(flags, recent))
            if len(self._flag_lists) < FLAG_CACHE_ENTRIES:
                self._flag_lists[key] = cached
        return cached

    def flag_text(self, flags: frozenset[str], recent: bool) -> str:
        """The same list as text, for the FETCH paths that encode a whole chunk at once."""
        key = (flags, recent)
        cached = self._flag_texts.get(key)
        if cached is None:
            cached = "(" + " ".join(_ordered(flags, recent)) + ")"
            if len(self._flag_texts) < FLAG_CACHE_ENTRIES:
                self._flag_texts[key] = cached
        return cached


def _ordered(flags: frozenset[str], recent: bool) -> list[str]:
    ordered = [f for f in SYSTEM_ORDER if f in flags] + sorted(f for f in flags if f not in SYSTEM_FLAGS)
    if recent:
        ordered.append("\\Recent")
    return ordered


def folder_infos(mailbox: Mailbox, name: str, cache: dict[str, FolderInfos]) -> list[MessageInfo]:
    """Every message of folder ``name`` (ascending UID), from the cache brought up to date. Worker thread."""
    folder = mailbox.folder(name)
    entry = cache.get(folder.name)
    if entry is not None and entry.folder_id == folder.id and entry.uidvalidity == folder.uidvalidity:
        if entry.modseq == folder.highestmodseq:
            return entry.infos
        changed = mailbox.messages(folder.name, changed_since=entry.modseq)
        gone = set(mailbox.expunged_since(folder.name, entry.modseq))
        merged = {i.uid: i for i in entry.infos if i.uid not in gone}
        merged.update((i.uid, i) for i in changed if i.uid not in gone)
        infos = [merged[uid] for uid in sorted(merged)]
    else:
        infos = mailbox.messages(folder.name)
    cache.pop(folder.name, None)
    while len(cache) >= INFO_CACHE_FOLDERS:
        cache.pop(next(iter(cache)))
    cache[folder.name] = FolderInfos(folder.id, folder.uidvalidity, folder.highestmodseq, infos)
    return infos
