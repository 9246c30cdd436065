"""QRESYNC (RFC 7162 §3.2): VANISHED responses and the resynchronisation SELECT and UID FETCH ask for.

The store keeps every expunged UID with the MOD-SEQUENCE of its removal (``expunged_since``), so a
VANISHED (EARLIER) answer is exact: the UIDs the client asked about that went after the MOD-SEQUENCE
it knew, no more. Expunges the session itself announces (``updates``) use ``vanished`` in place of
EXPUNGE once the client has enabled QRESYNC (§3.2.10.2).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sealmail.imap import wire
from sealmail.imap.replies import bad

if TYPE_CHECKING:
    from sealmail.imap import parser as p
    from sealmail.imap.selection import Selected
    from sealmail.imap.session import Session
    from sealmail.store.mailbox import MessageInfo

_UNBOUNDED = 2**63  # above any UID: where a client's "*" ends


def require_enabled(s: Session) -> None:
    """RFC 7162 §3.2.3: the QRESYNC SELECT parameter and the VANISHED modifier need ENABLE QRESYNC first."""
    if not s.qresync:
        raise bad("QRESYNC is not enabled: send ENABLE QRESYNC first")


def vanished(uids: Iterable[int], *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10) for ascending UIDs."""
    return b"* VANISHED " + (b"(EARLIER) " if earlier else b"") + wire.sequence_set(uids).encode() + b"\r\n"


class UidSpans:
    """The UIDs a client's set names, as sorted disjoint ranges; ``None`` (no set) names every UID.

    A "*" reaches past the highest UID: the client asks about every UID from there on, expunged ones
    above the last message included.
    """

    __slots__ = ("_highs", "_lows")

    def __init__(self, seqs: p.SequenceSet | None) -> None:
        pairs = [(1, _UNBOUNDED)] if seqs is None else [_span(low, high) for low, high in seqs.ranges]
        merged: list[tuple[int, int]] = []
        for low, high in sorted(pairs):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        self._lows = [low for low, _ in merged]
        self._highs = [high for _, high in merged]

    def __contains__(self, uid: int) -> bool:
        i = bisect.bisect_right(self._lows, uid) - 1
        return i >= 0 and uid <= self._highs[i]


def _span(low: int | None, high: int | None) -> tuple[int, int]:
    a = _UNBOUNDED if low is None else low
    b = _UNBOUNDED if high is None else high
    return min(a, b), max(a, b)


def send_vanished_earlier(s: Session, sel: Selected, gone: Iterable[int], wanted: UidSpans) -> None:
    """VANISHED (EARLIER) for the expunged UIDs the client asked about. A UID still in this session's
    view is left out: EARLIER never renumbers (§3.2.10.1), so a message still counted here goes out
    with the plain VANISHED once the view catches up."""
    uids = [u for u in gone if u in wanted and not sel.seq_of(u)]
    if uids:
        s.out(vanished(sorted(uids), earlier=True))


async def select_resync(s: Session, sel: Selected, params: p.QresyncParams) -> None:
    """RFC 7162 §3.2.5.1, after SELECT's usual responses: what the client missed since ``params.modseq``,
    as if it had sent UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED)."""
    if params.uidvalidity != sel.uidvalidity:
        return  # the client's cache is of another mailbox: it starts again from the plain SELECT
    assert s.mbox is not None
    mailbox = s.mbox.mailbox
    name, since = sel.name, params.modseq
    wanted = UidSpans(params.known_uids)
    # The message sequence match data (§3.2.5.2) only narrows the search for servers that forget
    # expunges; the store remembers every one, so the answer is exact without it.

    def load() -> tuple[list[int], list[MessageInfo]]:
        return mailbox.expunged_since(name, since), mailbox.messages(name, changed_since=since)

    gone, changed = await s.mbox.run(load)
    send_vanished_earlier(s, sel, gone, wanted)
    lines = []
    for info in changed:
        seq = sel.seq_of(info.uid)
        # Changes after the SELECT's own reading reach the session as events and are announced then.
        if seq and info.uid in wanted and info.modseq <= sel.modseq:
            flags = s.flag_list(info.flags, info.uid in sel.recent)
            lines.append(b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n" % (seq, info.uid, flags, info.modseq))
    if lines:
        s.out(b"".join(lines))


async def fetch_vanished(s: Session, sel: Selected, seqs: p.SequenceSet, since: int) -> None:
    """RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE since VANISHED) reports the set's UIDs expunged after
    ``since`` in VANISHED (EARLIER), before any FETCH response."""
    assert s.mbox is not None
    gone = await s.mbox.expunged_since(sel.name, since)
    send_vanished_earlier(s, sel, gone, UidSpans(seqs))
