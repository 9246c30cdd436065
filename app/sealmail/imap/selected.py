"""The commands on messages: SELECT/EXAMINE, FETCH, SEARCH, STORE, COPY/MOVE, EXPUNGE, CLOSE/UNSELECT,
CHECK, and APPEND and IDLE (valid without a selected folder too).

Each is a function of the session and its parsed command (``session`` dispatches to them). The
selected folder's view (``selection.Selected``) changes here only through what the command itself
did; what other sessions did is announced by ``updates``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC
from typing import TYPE_CHECKING

from sealmail.imap import contexts, qresync, wire
from sealmail.imap import parser as p
from sealmail.imap.fetch import Fetcher
from sealmail.imap.mailboxes import canonical
from sealmail.imap.replies import Reply, Silent, bad, no
from sealmail.imap.selection import Selected, resolve, resolve_key, uses_modseq
from sealmail.imap.sorting import esearch
from sealmail.imap.states import AUTHENTICATED, LOGOUT, SELECTED
from sealmail.imap.uidmap import UidMap
from sealmail.imap.updates import announce_expunges, catch_up, selected_folder_vanished
from sealmail.mime.binarycontent import NotStorable, without_nul
from sealmail.store import search as sk
from sealmail.store.errors import FolderNotFound
from sealmail.store.mailbox import SYSTEM_FLAGS

if TYPE_CHECKING:
    from sealmail.imap.session import Session
    from sealmail.store import events as ev
    from sealmail.store.mailbox import Folder


async def cmd_select(s: Session, c: p.Select) -> Reply:
    assert s.mbox is not None
    if c.qresync is not None:
        qresync.require_enabled(s)  # a BAD leaves the selected mailbox as it was
    if s.sel is not None:
        s.sel = None
        s.state = AUTHENTICATED
        s.untagged("OK [CLOSED] Previous mailbox closed")  # RFC 9051 §6.3.2, RFC 7162 §3.2.11
    if c.condstore:
        s.condstore = True
    mailbox = s.mbox.mailbox
    readonly = c.readonly

    def load() -> tuple[Folder, list[int], set[int], list[str], list[int]]:
        folder = mailbox.folder(c.mailbox)
        # RFC 3501 §6.3.2: SELECT takes the \Recent messages; EXAMINE only counts them
        if readonly:
            recent = set(mailbox.search(folder.name, sk.HasFlag("\\Recent")))
        else:
            recent = mailbox.claim_recent(folder.name)
        uids = mailbox.uids(folder.name)
        keywords = mailbox.keywords()
        unseen = mailbox.search(folder.name, sk.Not(sk.HasFlag("\\Seen"))) if not s.rev2 else []
        return folder, uids, recent, keywords, unseen[:1]

    folder, uids, recent, keywords, first_unseen = await s.mbox.run(load)
    if s.options.learner is not None and s.options.learner.waiting(s.mbox.mailbox_id):
        s.learn_now()  # jobs left by a failed try: this is a moment the key is here to retry them
    sel = Selected(folder.name, folder.id, readonly, folder.uidvalidity, UidMap(uids), folder.highestmodseq, recent)
    sel.special_use = folder.special_use
    sel.exists = len(uids)
    sel.keywords = tuple(keywords)
    s.sel = sel
    s.state = SELECTED
    s.flags_responses(sel)
    s.untagged(f"{len(uids)} EXISTS")
    if not s.rev2:
        s.untagged(f"{len(recent)} RECENT")
        if first_unseen:
            s.untagged(f"OK [UNSEEN {sel.seq_of(first_unseen[0])}] First unseen")
    s.untagged(f"OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
    s.untagged(f"OK [UIDNEXT {folder.uidnext}] Predicted next UID")
    s.untagged(f"OK [HIGHESTMODSEQ {folder.highestmodseq}] Highest")
    s.untagged(f"OK [MAILBOXID ({folder.object_id})] Ok")  # RFC 8474 §4.2
    if s.rev2:
        s.untagged(b'LIST () "/" ' + wire.mailbox(folder.name, s.utf8))
    if c.qresync is not None:
        await qresync.select_resync(s, sel, c.qresync)
    code = "READ-ONLY" if readonly else "READ-WRITE"
    return "OK", f"{c.name} completed", code


async def cmd_append(s: Session, c: p.Append) -> Reply:
    assert s.mbox is not None
    message = c.message
    if b"\x00" in message:
        # RFC 3516 §4.4: a literal8 may carry NUL; the parts holding it are stored base64-encoded
        try:
            message = without_nul(message)
        except NotStorable as exc:
            raise no(f"Cannot store this binary content: {exc}", "UNKNOWN-CTE") from None
    if len(message) > s.options.append_limit:
        raise no("Message too large", "TOOBIG")
    if not message:
        raise no("Empty message", "CANNOT")
    flags = [f for f in c.flags if f.lower() != "\\recent"]
    for flag in flags:
        if flag.startswith("\\") and flag.lower() not in {f.lower() for f in SYSTEM_FLAGS}:
            raise bad(f"Unknown system flag {flag[:30]}")
    when = c.date.astimezone(UTC) if c.date else None
    try:
        result = await s.mbox.append(c.mailbox, message, flags, when)
    except FolderNotFound:
        raise no("No such mailbox", "TRYCREATE") from None
    if s.sel is not None and s.sel.name == canonical(c.mailbox):
        s.poll_after = True
    return "OK", "APPEND completed", f"APPENDUID {result.uidvalidity} {result.uid}"


async def cmd_idle(s: Session, c: p.Command) -> Reply:
    # RFC 2177: updates go out as they happen until the client says DONE
    assert s.sub is not None
    s.out(b"+ idling\r\n")
    await catch_up(s, poll=True, expunge_ok=True)
    await s.conn.flush()
    reader = asyncio.ensure_future(s.conn.readline(s.options.autologout))
    try:
        while True:
            getter = asyncio.ensure_future(s.sub.queue.get())
            s.quiet = True
            try:
                done, _ = await asyncio.wait({reader, getter}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                getter.cancel()
                raise
            finally:
                s.quiet = False
            first: ev.ChangeEvent | None
            if getter in done:
                first = getter.result()
            else:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    first = await getter
                first = getter.result() if not getter.cancelled() else None
            if first is not None:
                try:
                    await catch_up(s, poll=False, expunge_ok=True, first=first)
                except FolderNotFound:
                    selected_folder_vanished(s)
                await s.conn.flush()
            if reader in done:
                break
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    try:
        line = reader.result()
    except TimeoutError:
        s.untagged("BYE Autologout; idle for too long")
        s.state = LOGOUT
        raise Silent() from None
    if line.rstrip(b"\r\n").upper() != b"DONE":
        raise bad("Expected DONE")
    return "OK", "IDLE terminated", None


async def cmd_check(s: Session, c: p.Command) -> None:
    s.poll_after = True


async def cmd_close(s: Session, c: p.Command) -> None:
    sel = s.selected()
    assert s.mbox is not None
    s.sel = None
    s.state = AUTHENTICATED
    if not sel.readonly:
        # RFC 9051 §6.4.1: remove \Deleted messages silently
        with contextlib.suppress(FolderNotFound):
            await s.mbox.expunge(sel.name)


async def cmd_unselect(s: Session, c: p.Command) -> None:
    s.sel = None
    s.state = AUTHENTICATED


async def cmd_expunge(s: Session, c: p.Command | p.UidExpunge) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    if sel.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    uids = None
    if isinstance(c, p.UidExpunge):
        uids = [uid for _, uid in resolve(sel, c.seqs, uid=True)]
    removed = await s.mbox.expunge(sel.name, uids)
    sel.ghosts.update(u for u in removed if sel.seq_of(u))
    announce_expunges(s, sel)
    if s.qresync and removed:
        # RFC 7162 §3.2.7 and §3.2.9: the tagged OK carries the HIGHESTMODSEQ the expunge made. The
        # folder is read again first, and whatever else changed up to it announced, so the value never
        # claims a change the client has not been told of.
        await catch_up(s, poll=True, expunge_ok=True)
        return "OK", f"{c.name} completed", f"HIGHESTMODSEQ {sel.modseq}"
    return None


async def cmd_search(s: Session, c: p.Search) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    save = c.returns is not None and "SAVE" in c.returns
    returns = None if c.returns is None else tuple(o for o in c.returns if o != "SAVE")
    if save:
        sel.saved = frozenset()  # RFC 5182 §2.1: a SEARCH with SAVE that fails leaves $ empty
    if c.charset not in (None, "UTF-8", "US-ASCII"):
        raise no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
    by_modseq = uses_modseq(c.key)
    if by_modseq:
        s.enable_condstore()
    key = resolve_key(sel, c.key)
    known_max = sel.max_uid()
    found = [u for u in await s.mbox.search(sel.name, key) if u <= known_max and u not in sel.ghosts]
    found = [u for u in found if sel.seq_of(u)]
    min_max = found and returns and set(returns) <= {"MIN", "MAX"}
    # RFC 4731 §3.2: with only MIN and/or MAX asked, those messages are the ones returned
    returned = (
        [*([found[0]] if "MIN" in returns else []), *([found[-1]] if "MAX" in returns else [])]
        if min_max and returns
        else found
    )
    if save:
        sel.saved = frozenset(returned)  # RFC 5182 §2.2: MIN/MAX alone save just those
    highest = None
    if by_modseq and found:
        infos = await s.mbox.messages(sel.name, returned)  # RFC 7162 §3.1.5: of the messages returned
        highest = max((i.modseq for i in infos), default=None)
    numbers = found if c.uid else [sel.seq_of(u) for u in found]
    if save and not returns:
        return None  # RFC 5182 §2.1: SAVE on its own answers nothing but the tagged OK
    if returns is not None or s.rev2:
        # RFC 4731 / RFC 9051 §7.3.4: ESEARCH, found in ascending order (MIN and MAX are its ends)
        line = esearch(c.tag, c.uid, sorted(numbers), tuple(returns or ()), c.partial)
        if highest is not None:
            line += f" MODSEQ {highest}"
        s.untagged(line)
        if c.returns is not None and "UPDATE" in c.returns:
            contexts.start(s, sel, c.tag, c.uid, key, None, found)  # RFC 5267 §4.2
    else:
        line = "SEARCH" + "".join(f" {n}" for n in numbers)
        if highest is not None:
            line += f" (MODSEQ {highest})"  # RFC 7162 §3.1.5
        s.untagged(line)
    return None


async def cmd_fetch(s: Session, c: p.Fetch) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    if c.vanished:
        qresync.require_enabled(s)
    targets = resolve(sel, c.seqs, c.uid)
    atts = list(c.atts)
    kinds = {a.kind for a in atts}
    if c.uid and "UID" not in kinds:
        atts.insert(0, p.FetchAtt("UID"))
    if c.changed_since is not None or "MODSEQ" in kinds:
        s.enable_condstore()  # RFC 7162 §3.1: the first CONDSTORE command enables it
    if c.changed_since is not None and "MODSEQ" not in kinds:
        atts.append(p.FetchAtt("MODSEQ"))
    if c.vanished and c.changed_since is not None:
        await qresync.fetch_vanished(s, sel, c.seqs, c.changed_since)
    ghosts = [uid for _, uid in targets if uid in sel.ghosts]
    targets = [(n, u) for n, u in targets if u not in sel.ghosts]
    if targets:
        await Fetcher(s, sel, atts, c.changed_since).run(targets)
    if ghosts and not c.uid:
        return "OK", "Some messages were expunged meanwhile", "EXPUNGEISSUED"
    return None


async def cmd_store(s: Session, c: p.Store) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    if sel.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    for flag in c.flags:
        if flag.startswith("\\") and flag.lower() not in {f.lower() for f in (*SYSTEM_FLAGS, "\\Recent")}:
            raise bad(f"Unknown system flag {flag[:30]}")
    if c.unchanged_since is not None:
        s.enable_condstore()
    targets = [(n, u) for n, u in resolve(sel, c.seqs, c.uid) if u not in sel.ghosts]
    flags = [f for f in c.flags if f.lower() != "\\recent"]
    result = await s.mbox.store_flags(
        sel.name, [u for _, u in targets], c.mode, flags, unchanged_since=c.unchanged_since
    )
    if result.changed:
        sel.note_own(result.changed[0].modseq)  # our own change: no need to hear of it again
    new_keywords = [f for f in flags if not f.startswith("\\") and f.lower() not in {k.lower() for k in sel.keywords}]
    if new_keywords:
        sel.keywords = tuple(await s.mbox.keywords())
        s.flags_responses(sel)
    infos = sorted((*result.changed, *result.unchanged), key=lambda i: i.uid)
    changed = {i.uid for i in result.changed}
    for info in infos:
        sel.dirty.pop(info.uid, None)
        seq = sel.seq_of(info.uid)
        if not seq:
            continue
        parts = []
        if c.uid or s.qresync:  # RFC 7162 §3.2.4: with QRESYNC every flag FETCH names its UID
            parts.append(b"UID %d" % info.uid)
        if not c.silent:
            parts.append(b"FLAGS " + s.flag_list(info.flags, info.uid in sel.recent))
        if s.condstore and (not c.silent or info.uid in changed):
            parts.append(b"MODSEQ (%d)" % info.modseq)
        if c.silent and not (s.condstore and info.uid in changed):
            continue
        s.out(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
    if result.conflicts:
        # RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE
        numbers = sorted(result.conflicts) if c.uid else sorted(sel.seq_of(u) for u in result.conflicts)
        return "OK", "Conditional STORE failed for some messages", f"MODIFIED {wire.sequence_set(numbers)}"
    return None


async def cmd_copy(s: Session, c: p.Copy) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    move = c.name == "MOVE"
    if move and sel.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    uids = [u for _, u in resolve(sel, c.seqs, c.uid) if u not in sel.ghosts]
    target = canonical(c.mailbox)
    try:
        target_folder = await s.mbox.folder(target)
    except FolderNotFound:
        raise no("No such mailbox", "TRYCREATE") from None
    if not uids:
        return None
    if move and target == sel.name:
        # RFC 6851 §3.3: moving into the same mailbox gives the messages new UIDs
        result = await s.mbox.copy(sel.name, uids, target)
        await s.mbox.store_flags(sel.name, uids, "add", ["\\Deleted"])
        await s.mbox.expunge(sel.name, uids)
    else:
        # Filed into or out of Junk: queued for the spam filter in the same transaction (spam.learning)
        learn = s.learning_signal(sel.special_use, target_folder.special_use)
        result = await (s.mbox.move if move else s.mbox.copy)(sel.name, uids, target, learn=learn)
        if learn is not None and result.pairs:
            s.learn_now()
    if target == sel.name:
        s.poll_after = True
    code = None
    if result.pairs:
        src = wire.sequence_set(a for a, _ in result.pairs)
        dst = wire.sequence_set(b for _, b in result.pairs)
        code = f"COPYUID {result.uidvalidity} {src} {dst}"
    if move:
        # RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK
        if code:
            s.untagged(f"OK [{code}] Moved")
        sel.ghosts.update(a for a, _ in result.pairs)
        announce_expunges(s, sel)
        return "OK", "MOVE completed", None
    return "OK", "COPY completed", code
