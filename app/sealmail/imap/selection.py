"""The selected folder as one session sees it, and how sequence sets and search keys address it.

``Selected`` holds what only the session knows: its sequence numbers (the UID list, which keeps
expunges not yet announced), the messages that are \\Recent to it, the changes made elsewhere that it
has still to announce. The functions below turn a client's sequence numbers or UIDs into
(sequence number, UID) pairs and a search key's sets into UID ranges the store understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sealmail.imap import parser as p
from sealmail.imap.uidmap import UidMap
from sealmail.store import search as sk
from sealmail.store.mailbox import MessageInfo

if TYPE_CHECKING:
    from sealmail.imap.contexts import SearchContext


@dataclass(slots=True)
class Selected:
    """The selected folder as this session sees it."""

    name: str
    folder_id: int
    readonly: bool
    uidvalidity: int
    uids: UidMap  # ascending; index + 1 is the sequence number; includes unannounced expunges
    modseq: int  # every change up to this MODSEQ is reflected here (or pending below)
    recent: set[int] = field(default_factory=set)
    ghosts: set[int] = field(default_factory=set)  # expunged elsewhere, EXPUNGE not yet sent
    dirty: dict[int, MessageInfo | None] = field(default_factory=dict)  # flags changed elsewhere
    exists: int = 0  # the last EXISTS count announced
    keywords: tuple[str, ...] = ()
    own: set[int] = field(default_factory=set)  # MODSEQs of flag changes this session made and reported
    # RFC 5182: what the last SEARCH RETURN (SAVE) kept, as UIDs, so expunged ones simply drop out;
    # a new selection starts empty
    saved: frozenset[int] = frozenset()
    # Below the MODSEQ of every expunge still waiting to be announced (RFC 7162 §3.2): None when none waits.
    expunge_floor: int | None = None
    contexts: list[SearchContext] = field(default_factory=list)  # RFC 5267 search contexts (imap.contexts)
    special_use: str | None = None  # RFC 6154 §2 (a filing out of \Junk teaches the spam filter ham)

    def note_own(self, modseq: int) -> None:
        """A flag change of ours: when its event comes back through the bus it is not news."""
        if modseq == self.modseq + 1:
            self.modseq = modseq
        else:
            self.own.add(modseq)  # events before it are still on their way; recognise it when it arrives

    def seq_of(self, uid: int) -> int:
        return self.uids.index(uid) + 1

    def max_uid(self) -> int:
        return self.uids.last()


def resolve(sel: Selected, seqs: p.SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(sequence number, UID) pairs addressed by a sequence set, ascending, without duplicates."""
    if seqs.saved:
        # RFC 5182 §2.1: $ is the same messages in sequence-number and UID commands
        return [(seq, u) for u in sorted(sel.saved) if (seq := sel.seq_of(u))]
    uids = sel.uids
    count = len(uids)
    spans: list[tuple[int, int]] = []  # index ranges, inclusive
    for low, high in seqs.ranges:
        if uid:
            top = uids.last()
            a = top if low is None else low
            b = top if high is None else high
            a, b = min(a, b), max(a, b)
            i = uids.bisect_left(a)
            j = uids.bisect_right(b) - 1
        else:
            a = count if low is None else low
            b = count if high is None else high
            a, b = min(a, b), max(a, b)
            i, j = a - 1, min(b, count) - 1
        if i <= j and i < count:
            spans.append((i, j))
    if not spans:
        return []
    spans.sort()
    merged = [spans[0]]
    for i, j in spans[1:]:
        if i <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], j))
        else:
            merged.append((i, j))
    return [(k, uid) for i, j in merged for k, uid in enumerate(uids.between(i, j), i + 1)]


def visible(sel: Selected, uids: list[int]) -> list[int]:
    """The UIDs this session can number: none it has not seen announced, none it saw expunged."""
    if len(uids) < 64:
        known_max = sel.max_uid()
        return [u for u in uids if u <= known_max and u not in sel.ghosts and sel.seq_of(u)]
    known = set(sel.uids) - sel.ghosts  # a whole folder's result: one pass beats a lookup per UID
    return [u for u in uids if u in known]


def numbers(sel: Selected, uids: list[int], uid: bool) -> list[int]:
    """What the client asked to see for these (visible) UIDs: the UIDs, or their sequence numbers."""
    if uid:
        return uids
    if len(uids) < 64:
        return [sel.seq_of(u) for u in uids]
    seqs = {u: n for n, u in enumerate(sel.uids, 1)}
    return [seqs[u] for u in uids]


def uid_ranges(sel: Selected, pairs: list[tuple[int, int]]) -> sk.UidSet:
    """Consecutive sequence numbers map to UID ranges (the UID list has no gaps a message could fill)."""
    ranges: list[tuple[int, int | None]] = []
    start: int | None = None
    prev = 0
    for seq, _uid in pairs:
        if start is not None and seq == prev + 1:
            prev = seq
            continue
        if start is not None:
            ranges.append((sel.uids[start - 1], sel.uids[prev - 1]))
        start = prev = seq
    if start is not None:
        ranges.append((sel.uids[start - 1], sel.uids[prev - 1]))
    return sk.UidSet(tuple(ranges))


def resolve_key(sel: Selected, key: sk.SearchKey) -> sk.SearchKey:
    """A search key with its sequence sets, UID sets and RECENT turned into UID ranges."""
    if isinstance(key, p.SeqSetKey):
        return uid_ranges(sel, resolve(sel, key.seqs, uid=False))
    if isinstance(key, p.UidSetKey):
        return uid_ranges(sel, resolve(sel, key.uids, uid=True))
    if isinstance(key, p.RecentKey):
        return uid_ranges(sel, [(sel.seq_of(u), u) for u in sorted(sel.recent) if sel.seq_of(u)])
    if isinstance(key, sk.Not):
        return sk.Not(resolve_key(sel, key.key))
    if isinstance(key, sk.And):
        return sk.And(tuple(resolve_key(sel, k) for k in key.keys))
    if isinstance(key, sk.Or):
        return sk.Or(resolve_key(sel, key.left), resolve_key(sel, key.right))
    return key


def uses_modseq(key: sk.SearchKey) -> bool:
    """The key searches by MODSEQ (RFC 7162 §3.1.5), which enables CONDSTORE."""
    return sk.any_key(key, lambda k: isinstance(k, sk.ModSeq))
