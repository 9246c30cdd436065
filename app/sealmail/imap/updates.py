"""Other sessions' changes to the selected folder, absorbed and announced as untagged responses.

Changes arrive as store change events (IDs, UIDs and MODSEQs only). They are absorbed into the
``Selected`` folder's pending updates and announced only where RFC 9051 allows: EXISTS and FETCH at
the end of any command, EXPUNGE (VANISHED after ENABLE QRESYNC, RFC 7162 §3.2.10.2) never while
answering FETCH, STORE or SEARCH (RFC 9051 §7.5.1), and at once during IDLE (RFC 2177). The
folder's HIGHESTMODSEQ is the ground truth: whenever events may have been missed or arrive out of
order, the session re-reads what changed since the MODSEQ it knows.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sealmail.imap import contexts
from sealmail.imap.qresync import vanished
from sealmail.imap.states import AUTHENTICATED
from sealmail.store import events as ev
from sealmail.store.errors import FolderNotFound
from sealmail.store.mailbox import MessageInfo

if TYPE_CHECKING:
    from sealmail.imap.selection import Selected
    from sealmail.imap.session import Session
    from sealmail.store.mailbox import Folder


async def catch_up(s: Session, *, poll: bool, expunge_ok: bool, first: ev.ChangeEvent | None = None) -> None:
    """Absorb pending change events (and with ``poll``, check the folder's MODSEQ), then announce."""
    sub, sel = s.sub, s.sel
    if sub is None:
        return
    events = [first] if first is not None else []
    while True:
        try:
            events.append(sub.queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    if sel is None:
        return
    resync = poll or sub.overflowed
    sub.overflowed = False
    for event in events:
        if isinstance(event, ev.Resync):
            resync = True  # the bus was away: events may be lost, so ask the store
            continue
        folder_id = getattr(event, "folder_id", None)
        if folder_id != sel.folder_id or resync:
            continue
        assert isinstance(event, ev.MessagesAdded | ev.FlagsChanged | ev.MessagesExpunged)
        if event.modseq <= sel.modseq:
            continue  # already reflected (our own change, or caught up by a resync)
        if event.modseq != sel.modseq + 1:
            resync = True  # a gap: something was missed or reordered; ask the store
            continue
        sel.modseq = event.modseq
        if event.modseq in sel.own:
            sel.own.discard(event.modseq)  # our own flag change, already reported
            continue
        if isinstance(event, ev.MessagesAdded):
            top = sel.max_uid()
            sel.uids.extend(u for u in sorted(event.uids) if u > top)
        elif isinstance(event, ev.MessagesExpunged):
            held = [u for u in event.uids if sel.seq_of(u)]
            if held and sel.expunge_floor is None:
                sel.expunge_floor = event.modseq - 1
            sel.ghosts.update(held)
        else:
            for uid in event.uids:
                if sel.seq_of(uid) and uid not in sel.ghosts:
                    sel.dirty[uid] = None
    if resync:
        await resync_folder(s, sel)
    await announce(s, sel, expunge_ok)
    if s.sel is sel:
        await contexts.refresh(s, sel)  # RFC 5267 §4.3: ADDTO/REMOVEFROM once the client knows the numbers


async def resync_folder(s: Session, sel: Selected) -> None:
    """Re-read from the store what changed since ``sel.modseq``: the events may have missed some."""
    assert s.mbox is not None
    mailbox = s.mbox.mailbox
    since = sel.modseq
    name = sel.name

    def load() -> tuple[Folder, list[MessageInfo], list[int]]:
        folder = mailbox.folder(name)
        if folder.highestmodseq == since:
            return folder, [], []
        return folder, mailbox.messages(name, changed_since=since), mailbox.expunged_since(name, since)

    folder, changed, gone = await s.mbox.run(load)
    if folder.id != sel.folder_id or folder.uidvalidity != sel.uidvalidity:
        raise FolderNotFound(name)
    top = sel.max_uid()
    for info in changed:
        if info.uid > top:
            sel.uids.append(info.uid)
            top = info.uid
        elif sel.seq_of(info.uid) and info.uid not in sel.ghosts and info.modseq not in sel.own:
            sel.dirty[info.uid] = info
    held = [u for u in gone if sel.seq_of(u)]
    if held and sel.expunge_floor is None:
        sel.expunge_floor = since  # they all went after it
    sel.ghosts.update(held)
    sel.modseq = max(sel.modseq, folder.highestmodseq)
    sel.own = {m for m in sel.own if m > sel.modseq}


async def announce(s: Session, sel: Selected, expunge_ok: bool) -> None:
    """The pending updates, in order: EXPUNGE (where allowed), EXISTS and RECENT, then FLAGS and FETCH."""
    if expunge_ok and sel.ghosts:
        announce_expunges(s, sel)
    if len(sel.uids) > sel.exists:
        if not sel.readonly and not s.rev2:
            # RFC 3501 §2.3.2: new messages are \Recent to the first session that learns of them.
            # Once a session of this process has claimed up to a UID, the others need not ask the
            # store (a thousand IDLE sessions would queue a thousand claims behind each new message).
            assert s.mbox is not None
            claimed = s.caches.of(s.mbox).claimed
            if claimed.get(sel.folder_id, 0) < sel.max_uid():
                claimed[sel.folder_id] = sel.max_uid()
                sel.recent |= await s.mbox.claim_recent(sel.name)
        sel.exists = len(sel.uids)
        s.untagged(f"{sel.exists} EXISTS")
        if not s.rev2:
            s.untagged(f"{sum(1 for u in sel.recent if sel.seq_of(u))} RECENT")
    if sel.dirty:
        assert s.mbox is not None
        dirty, sel.dirty = sel.dirty, {}
        missing = [u for u, info in dirty.items() if info is None]
        if missing:
            for fresh in await s.mbox.messages(sel.name, missing):
                dirty[fresh.uid] = fresh
        known = {k.lower() for k in sel.keywords}
        if any(f.lower() not in known for i in dirty.values() if i for f in i.flags if not f.startswith("\\")):
            # RFC 9051 §7.3.5: a keyword another session introduced is announced in FLAGS first
            sel.keywords = tuple(await s.mbox.keywords())
            s.flags_responses(sel)
        for uid in sorted(dirty):
            info = dirty[uid]
            seq = sel.seq_of(uid)
            if info is None or not seq or uid in sel.ghosts:
                continue
            line = b"* %d FETCH (UID %d FLAGS " % (seq, uid) + s.flag_list(info.flags, uid in sel.recent)
            if s.condstore:
                line += b" MODSEQ (%d)" % info.modseq
            s.out(line + b")\r\n")
    if sel.ghosts and s.qresync and sel.expunge_floor is not None:
        # RFC 7162 §3.2: MODSEQs above an expunge still held back may have gone out (FETCH, STORE);
        # a client that stores the highest MODSEQ it saw and disconnects now would never learn of
        # the expunge. This HIGHESTMODSEQ, which the client must take over any MODSEQ (§6), keeps it below.
        s.untagged(f"OK [HIGHESTMODSEQ {sel.expunge_floor}] Expunges pending")


def announce_expunges(s: Session, sel: Selected) -> None:
    """Every pending removal: EXPUNGE responses, highest sequence number first (RFC 9051 §7.5.1), or
    after ENABLE QRESYNC one VANISHED response with their UIDs (RFC 7162 §3.2.10.2).

    A message the client was never told of (added and removed before the next EXISTS) is dropped
    without a word: neither response may name a message the client does not know.
    """
    if not sel.ghosts:
        return
    contexts.expunging(s, sel)  # RFC 5267 §4.3: REMOVEFROM while the sequence numbers still mean them
    gone = sel.ghosts
    told = sorted((seq, uid) for uid in gone if 0 < (seq := sel.seq_of(uid)) <= sel.exists)
    if s.qresync:
        if told:
            s.out(vanished(uid for _, uid in told))
    else:
        for seq, _ in reversed(told):
            s.out(b"* %d EXPUNGE\r\n" % seq)
    sel.uids.remove(gone)
    sel.recent -= gone
    for uid in gone:
        sel.dirty.pop(uid, None)
    sel.exists -= len(told)
    sel.ghosts = set()
    sel.expunge_floor = None


def selected_folder_vanished(s: Session) -> None:
    # Deleted or renamed away by another session: nothing sensible is left to show.
    s.sel = None
    s.state = AUTHENTICATED
    s.untagged("OK [CLOSED] The selected mailbox was removed or renamed elsewhere")
