"""The MX's spam statistics flushed to the config store: every ``FLUSH_SECONDS`` and at stop.

The counters are summed in memory (``spam.stats.SpamTally``) and added to the shared ones in the
config store in one write per interval, so statistics cost a message no round trip; a flush that
fails is carried by the next one. A process that dies loses at most its last interval's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sealmail.config.models import SpamCounts
from sealmail.spam.stats import SpamTally

if TYPE_CHECKING:
    from sealmail.appcontext import AppContext

log = logging.getLogger("sealmail.mx")
FLUSH_SECONDS = 5.0


class SpamStats:
    def __init__(self, app: AppContext, interval: float = FLUSH_SECONDS) -> None:
        self.app = app
        self.tally = SpamTally()
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``interval`` until ``stop`` is set, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            await self.flush()

    async def flush(self) -> None:
        days = self.tally.take()
        if not days:
            return
        counts = [SpamCounts(day, outcomes, symbols) for day, outcomes, symbols in days]
        try:
            await self.app.config_call(self.app.config.add_spam_counts, counts)
        except Exception as exc:  # the config store is away: the next flush carries them
            self.tally.give_back(days)
            log.warning("could not store the spam statistics: %s", exc)
