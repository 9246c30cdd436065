"""Messages read lately, kept decrypted in this process's memory: a second read costs nothing.

A client reads a message again (BODY[1] then BODY[2], TOP then RETR, the preview then the text),
and each read decrypts pages, inflates the skeleton and encodes attachments again. One budget for
the whole process (not per mailbox: a thousand idle sessions must not each hold megabytes), least
recently used first out, and never on disk. An open mailbox's entries go when it closes; the
bodies its own expunges free go at once. A body id is never reused (``bodies.id`` is
AUTOINCREMENT) and a body never changes, so an entry is never wrong, only possibly no longer needed.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable

BUDGET = 16 * 1024 * 1024  # octets for every mailbox of the process together
LARGEST = 2 * 1024 * 1024  # a larger message is not kept: it would push out many small ones

_owners = itertools.count(1)


class BodyCache:
    """Thread-safe: each mailbox reads on its own thread, and they share the budget."""

    def __init__(self, budget: int = BUDGET, largest: int = LARGEST) -> None:
        self.budget = budget
        self.largest = largest
        self.size = 0
        self._entries: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_owner() -> int:
        """A key for one open mailbox file (its ids mean nothing in another file)."""
        return next(_owners)

    def get(self, owner: int, body_id: int) -> bytes | None:
        with self._lock:
            data = self._entries.get((owner, body_id))
            if data is not None:
                self._entries.move_to_end((owner, body_id))
            return data

    def put(self, owner: int, body_id: int, data: bytes) -> None:
        if len(data) > self.largest:
            return
        with self._lock:
            old = self._entries.pop((owner, body_id), None)
            if old is not None:
                self.size -= len(old)
            self._entries[(owner, body_id)] = data
            self.size += len(data)
            while self.size > self.budget:
                _, dropped = self._entries.popitem(last=False)
                self.size -= len(dropped)

    def held(self, owner: int) -> list[int]:
        with self._lock:
            return [b for o, b in self._entries if o == owner]

    def forget(self, owner: int, body_ids: Iterable[int] | None = None) -> None:
        """Drop ``body_ids`` of ``owner``, or all of its entries."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == owner] if body_ids is None else [(owner, b) for b in body_ids]
            for key in keys:
                data = self._entries.pop(key, None)
                if data is not None:
                    self.size -= len(data)


PROCESS_BODIES = BodyCache()
