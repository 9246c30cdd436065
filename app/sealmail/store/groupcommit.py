"""Group commit: concurrent durable writes to one SQLite file share one transaction and one fsync.

With ``synchronous=FULL`` every COMMIT waits for an fsync (milliseconds on real disks), and one
connection commits one transaction at a time. ``GroupCommit.run`` lets the writers that arrive
while a commit is in flight ride on the next one: whoever finds the connection free becomes the
leader, takes every request queued so far, applies them in one transaction and commits; each
request then gets its own result (its own sequence numbers or ids). Nothing waits on a timer, so
a lone writer commits at once, and under load the batches grow by themselves.

No request returns before the transaction that holds it has committed. When a batch fails, its
transaction was rolled back and each request is retried alone, so a bad request fails only itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")


class _Ticket(Generic[R, T]):
    __slots__ = ("error", "finished", "request", "result")

    def __init__(self, request: R) -> None:
        self.request = request
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = False


class GroupCommit(Generic[R, T]):
    """Batches ``apply`` calls on one connection.

    ``lock`` guards the connection (other users of it take the same lock); ``apply(requests)`` runs
    one transaction for all of them, commits it and returns one result per request in order, or
    rolls back and raises.
    """

    def __init__(self, lock: threading.Lock, apply: Callable[[list[R]], list[T]]) -> None:
        self._lock = lock
        self._apply = apply
        self._queue: list[_Ticket[R, T]] = []
        self._queue_lock = threading.Lock()
        self.commits = 0  # transactions committed (for tests and statistics)

    def run(self, request: R) -> T:
        """Apply ``request`` durably (alone or with others) and return its result."""
        ticket: _Ticket[R, T] = _Ticket(request)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._lock:
            if not ticket.finished:  # no leader took it while we waited: lead, with all that queued up
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Ticket[R, T]]) -> None:
        try:
            results = self._apply([t.request for t in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for ticket in batch:  # rolled back: find the request at fault by committing each alone
                    self._commit([ticket])
        except BaseException as exc:  # interrupted: nobody in the batch may believe it was committed
            for ticket in batch:
                ticket.error = exc
            raise
        else:
            self.commits += 1
            for ticket, result in zip(batch, results, strict=True):
                ticket.result = result
        finally:
            for ticket in batch:
                ticket.finished = True
