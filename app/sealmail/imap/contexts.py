"""Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): a SEARCH or SORT with
``RETURN (UPDATE)`` keeps its result, and the session tells the client how it changes as messages
come, go or change flags: ``* ESEARCH (TAG "t") ADDTO (position set)`` and ``REMOVEFROM (...)``,
until ``CANCELUPDATE "t"`` or until the mailbox is no longer selected.

A context lives in the selected folder's view (``Selected.contexts``), so selecting another folder
drops it. It is evaluated again, with the same search program and sort order, whenever this session
has learnt of a change (``refresh``, after the updates of a command or during IDLE); messages about
to be announced as expunged leave it first (``expunging``), while their sequence numbers still mean
them. Positions: 0 for a SEARCH result, which has no order of its own; for a SORT result the
1-based place in the sorted list (removals from the last place back, then additions from the first
place on, so each position holds when it is applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.imap import parser as p
from sealmail.imap import wire
from sealmail.imap.replies import Reply, no
from sealmail.imap.selection import visible
from sealmail.store import search as sk
from sealmail.store.ordering import SortCriterion

if TYPE_CHECKING:
    from sealmail.imap.selection import Selected
    from sealmail.imap.session import Session

CAPABILITIES = ("CONTEXT=SEARCH", "CONTEXT=SORT")
MAX_CONTEXTS = 10  # per selected folder: each one is searched again after every change


@dataclass(slots=True)
class SearchContext:
    tag: str
    uid: bool
    key: sk.SearchKey  # sequence sets already turned into UIDs: the program the client sent, kept
    criteria: tuple[SortCriterion, ...] | None  # None: an unsorted SEARCH
    result: list[int]  # UIDs, in sort order (ascending for SEARCH)
    version: tuple[int, int]  # the view's (MODSEQ, message count) the result reflects


def _version(sel: Selected) -> tuple[int, int]:
    return sel.modseq, len(sel.uids) - len(sel.ghosts)


def start(
    s: Session,
    sel: Selected,
    tag: str,
    uid: bool,
    key: sk.SearchKey,
    criteria: tuple[SortCriterion, ...] | None,
    result: list[int],
) -> None:
    """Keep a SEARCH/SORT's result up to date for the client (RETURN (UPDATE), RFC 5267 §4.2)."""
    contexts = [c for c in sel.contexts if c.tag != tag]
    if len(contexts) >= MAX_CONTEXTS:
        # RFC 5267 §4.2: the server may decline to keep a context; NOUPDATE says which one
        s.untagged(f'NO [NOUPDATE "{tag}"] Too many search contexts; cancel one with CANCELUPDATE')
        return
    contexts.append(SearchContext(tag, uid, key, criteria, list(result), _version(sel)))
    sel.contexts = contexts


def expunging(s: Session, sel: Selected) -> None:
    """Messages about to be announced expunged leave every context first (REMOVEFROM)."""
    for ctx in sel.contexts:
        gone = [u for u in ctx.result if u in sel.ghosts]
        if gone:
            _removed(s, sel, ctx, gone)


async def refresh(s: Session, sel: Selected) -> None:
    """Search every context again if the view changed since, and tell the client what moved."""
    if not sel.contexts or s.mbox is None:
        return
    now = _version(sel)
    for ctx in list(sel.contexts):
        if ctx.version == now:
            continue
        if ctx.criteria is None:
            fresh = visible(sel, await s.mbox.search(sel.name, ctx.key))
        else:
            fresh = visible(sel, await s.mbox.sort(sel.name, ctx.key, ctx.criteria))
        ctx.version = now
        old = set(ctx.result)
        gone = [u for u in ctx.result if u not in set(fresh)]
        if gone:
            _removed(s, sel, ctx, gone)
        if any(u not in old for u in fresh):
            _added(s, sel, ctx, fresh, old)
        ctx.result = fresh


def _number(sel: Selected, ctx: SearchContext, uid: int) -> int:
    return uid if ctx.uid else sel.seq_of(uid)


def _head(ctx: SearchContext) -> str:
    return f'ESEARCH (TAG "{ctx.tag}")' + (" UID" if ctx.uid else "")


def _removed(s: Session, sel: Selected, ctx: SearchContext, gone: list[int]) -> None:
    doomed = set(gone)
    if ctx.criteria is None:
        pairs = [f"0 {wire.sequence_set(sorted(_number(sel, ctx, u) for u in gone))}"]
    else:
        places = [i for i, u in enumerate(ctx.result, 1) if u in doomed]
        pairs = [f"{i} {_number(sel, ctx, ctx.result[i - 1])}" for i in reversed(places)]
    ctx.result = [u for u in ctx.result if u not in doomed]
    s.untagged(f"{_head(ctx)} REMOVEFROM ({' '.join(pairs)})")


def _added(s: Session, sel: Selected, ctx: SearchContext, fresh: list[int], old: set[int]) -> None:
    if ctx.criteria is None:
        pairs = [f"0 {wire.sequence_set(sorted(_number(sel, ctx, u) for u in fresh if u not in old))}"]
    else:
        pairs = [f"{i} {_number(sel, ctx, u)}" for i, u in enumerate(fresh, 1) if u not in old]
    s.untagged(f"{_head(ctx)} ADDTO ({' '.join(pairs)})")


async def cmd_cancelupdate(s: Session, c: p.CancelUpdate) -> Reply | None:
    """RFC 5267 §4.2: stop updating the contexts of these tags."""
    sel = s.selected()
    known = {ctx.tag for ctx in sel.contexts}
    unknown = [t for t in c.tags if t not in known]
    if unknown:
        # RFC 5267 names no answer for an unknown tag; NO, as Dovecot says, and the others stay
        raise no(f"No search context has the tag {unknown[0][:30]!r}")
    sel.contexts = [ctx for ctx in sel.contexts if ctx.tag not in set(c.tags)]
    return None
