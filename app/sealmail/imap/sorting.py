"""SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT's RETURN options (RFC 5267 §3;
``RETURN (UPDATE)`` keeps a search context, ``imap.contexts``).

The store orders and selects (``store.ordering``); here the result is cut to what this session
knows (its sequence numbers, minus expunges it has not announced yet), threaded
(``imap.threads``), and written as ``SORT``, ``THREAD`` or ``ESEARCH`` responses.

The last few results are kept per mailbox for the process (``caches.MailboxCaches.orders``), under
the session's view of the folder (``_view``: which messages it sees, and for a program that reads
flags its MODSEQ too) and the command's resolved program, so a kept result is only used where
running the command again would give the same (and not while change events wait to be absorbed:
then the store is asked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sealmail.imap import contexts, threads, wire
from sealmail.imap import parser as p
from sealmail.imap.replies import Reply, no
from sealmail.imap.selection import Selected, numbers, resolve_key, uses_modseq, visible
from sealmail.store import search as sk

if TYPE_CHECKING:
    from sealmail.imap.session import Session

ORDER_CACHE_ENTRIES = 8  # per mailbox: a few folders' sort orders and threads

# RFC 5256 §3 SORT and THREAD, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT.
CAPABILITIES = ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT")
CHARSETS = frozenset(("UTF-8", "US-ASCII"))


def check_charset(charset: str | None) -> None:
    """RFC 5256 §3 / RFC 9051 §6.4.4: an unknown charset is NO [BADCHARSET] with the ones we know."""
    if charset is not None and charset not in CHARSETS:
        raise no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")


async def cmd_sort(s: Session, c: p.Sort) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    check_charset(c.charset)
    if uses_modseq(c.key):
        s.enable_condstore()
    key = resolve_key(sel, c.key)
    remembered = ("SORT", *_view(sel, key), key, c.criteria)
    found: list[int] | None = _recall(s, remembered)
    if found is None:
        found = visible(sel, await s.mbox.sort(sel.name, key, c.criteria))
        _keep(s, remembered, found)
    shown = numbers(sel, found, c.uid)
    if c.returns is not None:
        s.untagged(esearch(c.tag, c.uid, shown, c.returns, c.partial))
        if "UPDATE" in c.returns:
            contexts.start(s, sel, c.tag, c.uid, key, c.criteria, found)
    else:
        s.untagged("SORT" + "".join(f" {n}" for n in shown))
    return None


def _view(sel: Selected, key: sk.SearchKey) -> tuple[object, ...]:
    """What a result depends on besides the program. The messages this session can see are set by
    its message count, highest UID and unannounced expunges (a view only moves forward: appends
    raise the highest UID, expunges lower the count). Flags and MODSEQs matter only to a program
    that reads them; then the MODSEQ (and own changes not heard back yet) is part of the view."""
    view: tuple[object, ...] = (sel.folder_id, sel.uidvalidity, len(sel.uids), sel.max_uid(), len(sel.ghosts))
    if _reads_flags(key):
        view += (sel.modseq, tuple(sorted(sel.own)))
    return view


def _reads_flags(key: sk.SearchKey) -> bool:
    return sk.any_key(key, lambda k: isinstance(k, sk.HasFlag | sk.ModSeq))


def _recall(s: Session, key: tuple[object, ...]) -> Any:
    assert s.mbox is not None
    if s.sub is not None and not s.sub.queue.empty():
        return None  # changes are on their way to this session: its view is behind the store, ask it
    return s.caches.of(s.mbox).orders.get(key)


def _keep(s: Session, key: tuple[object, ...], value: object) -> None:
    assert s.mbox is not None
    kept = s.caches.of(s.mbox).orders
    kept.pop(key, None)
    while len(kept) >= ORDER_CACHE_ENTRIES:
        kept.pop(next(iter(kept)))
    kept[key] = value


def esearch(tag: str, uid: bool, numbers: list[int], returns: tuple[str, ...], partial: tuple[int, int] | None) -> str:
    """RFC 5267 §3.2: an ESEARCH answer to a sorted result (SEARCH's too: ascending). MIN and MAX
    are the first and the last in sort order, ALL keeps that order (ranges only where numbers ascend
    one by one), PARTIAL (RFC 5267 §4.4) is the slice of positions low..high of it."""
    opts = set(returns) or {"ALL"}  # RETURN (UPDATE) alone asks for no result now (RFC 5267 §4.2)
    parts = [f'ESEARCH (TAG "{tag}")']
    if uid:
        parts.append("UID")
    if numbers:
        if "MIN" in opts:
            parts.append(f"MIN {numbers[0]}")
        if "MAX" in opts:
            parts.append(f"MAX {numbers[-1]}")
        if "ALL" in opts:
            parts.append(f"ALL {wire.sequence_set(numbers)}")
    if "COUNT" in opts:
        parts.append(f"COUNT {len(numbers)}")
    if partial is not None:
        parts.append(partial_item(numbers, partial))
    return " ".join(parts)


def partial_item(numbers: list[int], partial: tuple[int, int]) -> str:
    """``PARTIAL (low:high set)``, or ``NIL`` for the set when no result falls in that window."""
    low, high = partial
    window = numbers[low - 1 : high]
    return f"PARTIAL ({low}:{high} {wire.sequence_set(window) if window else 'NIL'})"


async def cmd_thread(s: Session, c: p.Thread) -> Reply | None:
    sel = s.selected()
    assert s.mbox is not None
    check_charset(c.charset)
    if uses_modseq(c.key):
        s.enable_condstore()
    key = resolve_key(sel, c.key)
    remembered = ("THREAD", *_view(sel, key), key, c.algorithm)
    trees: list[threads.Node] | None = _recall(s, remembered)
    if trees is None:
        rows = await s.mbox.thread_messages(sel.name, key)
        shown = set(visible(sel, [r.uid for r in rows]))
        rows = [r for r in rows if r.uid in shown]
        trees = threads.references(rows) if c.algorithm == "REFERENCES" else threads.ordered_subject(rows)
        _keep(s, remembered, trees)
    number = (lambda uid: uid) if c.uid else _numbering(sel)
    s.untagged("THREAD" + (" " if trees else "") + "".join(threads.thread_text(t, number) for t in trees))
    return None


def _numbering(sel: Selected) -> Callable[[int], int]:
    seqs = {u: n for n, u in enumerate(sel.uids, 1)}
    return seqs.__getitem__
