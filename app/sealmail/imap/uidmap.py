"""The selected folder's sequence numbers: an ascending UID list kept as runs of consecutive UIDs.

Every session holds one for its selected folder (RFC 9051 §2.3.1.2: sequence number = position).
UIDs are mostly consecutive (gaps come only from expunges), so runs keep a 10,000-message folder
in a few hundred bytes instead of hundreds of kilobytes per session — what lets a thousand IDLE
sessions share a process.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator


class UidMap:
    __slots__ = ("_counts", "_starts", "_total")

    def __init__(self, uids: Iterable[int] = ()) -> None:
        self._starts = array("Q")  # first UID of each run
        self._counts = array("Q")  # messages before each run (cumulative), so index -> run by bisect
        self._total = 0
        self.extend(uids)

    def __len__(self) -> int:
        return self._total

    def _run_length(self, r: int) -> int:
        end = self._counts[r + 1] if r + 1 < len(self._counts) else self._total
        return end - self._counts[r]

    def __getitem__(self, index: int) -> int:
        if index < 0:
            index += self._total
        if not 0 <= index < self._total:
            raise IndexError(index)
        r = bisect.bisect_right(self._counts, index) - 1
        return self._starts[r] + (index - self._counts[r])

    def __iter__(self) -> Iterator[int]:
        for r, start in enumerate(self._starts):
            yield from range(start, start + self._run_length(r))

    def between(self, i: int, j: int) -> Iterator[int]:
        """The UIDs at positions ``i`` through ``j`` (inclusive), in order."""
        if i > j:
            return
        r = bisect.bisect_right(self._counts, i) - 1
        index = i
        while index <= j:
            start, first = self._starts[r], self._counts[r]
            end = min(j, first + self._run_length(r) - 1)
            yield from range(start + index - first, start + end - first + 1)
            index = end + 1
            r += 1

    def last(self) -> int:
        return self[-1] if self._total else 0

    def index(self, uid: int) -> int:
        """Position of ``uid`` (0-based), or -1 when absent."""
        r = bisect.bisect_right(self._starts, uid) - 1
        if r < 0:
            return -1
        offset = uid - self._starts[r]
        return self._counts[r] + offset if offset < self._run_length(r) else -1

    def bisect_left(self, uid: int) -> int:
        """Index of the first UID >= ``uid``."""
        r = bisect.bisect_right(self._starts, uid) - 1
        if r < 0:
            return 0
        offset = uid - self._starts[r]
        length = self._run_length(r)
        return self._counts[r] + min(offset, length)

    def bisect_right(self, uid: int) -> int:
        """Index after the last UID <= ``uid``."""
        return self.bisect_left(uid + 1)

    def append(self, uid: int) -> None:
        if self._total and uid <= self.last():
            raise ValueError("UIDs only grow")
        if self._total and uid == self.last() + 1:
            self._total += 1
            return
        self._starts.append(uid)
        self._counts.append(self._total)
        self._total += 1

    def extend(self, uids: Iterable[int]) -> None:
        for uid in uids:
            self.append(uid)

    def remove(self, doomed: set[int]) -> None:
        kept = [u for u in self if u not in doomed]
        self._starts, self._counts, self._total = array("Q"), array("Q"), 0
        self.extend(kept)
