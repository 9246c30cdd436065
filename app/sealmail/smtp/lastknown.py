"""What RCPT needs, remembered so the MX keeps accepting for known aliases while the config store is away.

Each lookup (an address's resolution, an alias's credential: its public key, mailbox id and usage,
the alias as shown) goes to the config store as always and its answer is remembered; only when the
config store fails (MongoDB unreachable, say) is the last answer used, if it is younger than
``max_age``. It is bounded (least recently used answers go first) and refreshed by every successful
lookup. Nothing secret is in it: public keys, random mailbox ids, alias settings, spool sizes.

With ``fresh`` above 0 an answer younger than that is used without asking at all: where every
lookup is a round trip to a data host, a busy mailbox is looked up once per ``fresh`` seconds, not
once per message (``settings.mx_lookup_fresh``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sealmail.errors import InvalidInput

log = logging.getLogger("sealmail.mx")
T = TypeVar("T")


class LastKnown:
    def __init__(self, size: int = 10_000, max_age: float = 24 * 3600.0, fresh: float = 0.0) -> None:
        self.size = size
        self.max_age = max_age
        self.fresh = fresh
        self._answers: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()  # lookups run on worker threads

    def through(self, key: Hashable, lookup: Callable[[], T]) -> T:
        """``lookup()``, remembered; its last answer when it fails (and one is known), else its error."""
        if self.fresh > 0:
            with self._lock:
                known = self._answers.get(key)
            if known is not None and time.monotonic() - known[0] < self.fresh:
                return known[1]  # type: ignore[no-any-return]
        try:
            value = lookup()
        except InvalidInput:
            raise  # the question was wrong, not the config store
        except Exception:
            with self._lock:
                known = self._answers.get(key)
            if known is None or time.monotonic() - known[0] > self.max_age:
                raise
            log.warning("the config store failed; answering from the last known lookup")
            return known[1]  # type: ignore[no-any-return]
        with self._lock:
            self._answers[key] = (time.monotonic(), value)
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._answers)
