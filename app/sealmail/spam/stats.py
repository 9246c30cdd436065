"""The spam filter's numbers, summed in memory per UTC day between flushes to the config store.

Each MX session process keeps one ``SpamTally``: a decision adds to counters (no message, no
address, no queue id is kept), and the MX hands ``take()`` to the config store every few seconds and
at stop (``smtp.spamstats``), so a busy MX adds one small write per interval, not one per message.
Outcomes: ``scanned`` (rspamd answered), ``rejected``, ``deferred``, ``junk`` (accepted, in Junk for
some recipient), ``unchecked`` (no answer); symbols: per rspamd symbol, the messages it counted on
(``policy.counted_symbols``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from sealmail.spam.policy import MessageSpam

Day = tuple[date, dict[str, int], dict[str, int]]  # day, outcomes, symbols
_OUTCOMES = {"reject": "rejected", "defer": "deferred", "spam": "junk"}


def outcomes_of(spam: MessageSpam) -> list[str]:
    """The outcome counters one message adds to."""
    if spam.status == "off":
        return []
    if spam.status == "unchecked":
        return ["unchecked", *(["deferred"] if spam.reply else [])]  # tempfail: also deferred
    found = _OUTCOMES.get(spam.status)
    return ["scanned", *([found] if found else [])]


class SpamTally:
    def __init__(self) -> None:
        self._outcomes: dict[date, Counter[str]] = {}
        self._symbols: dict[date, Counter[str]] = {}

    def note(self, spam: MessageSpam, when: datetime | None = None) -> None:
        outcomes = outcomes_of(spam)
        if not outcomes:
            return
        day = (when or datetime.now(UTC)).astimezone(UTC).date()
        self._outcomes.setdefault(day, Counter()).update(outcomes)
        self._symbols.setdefault(day, Counter()).update(set(spam.symbols))

    def take(self) -> list[Day]:
        """What was noted since the last ``take``, per day; the tally starts again from zero."""
        out = [(day, dict(self._outcomes[day]), dict(self._symbols.get(day, {}))) for day in sorted(self._outcomes)]
        self._outcomes, self._symbols = {}, {}
        return out

    def give_back(self, days: list[Day]) -> None:
        """Counts a flush could not store: added again, so the next flush carries them."""
        for day, outcomes, symbols in days:
            self._outcomes.setdefault(day, Counter()).update(outcomes)
            self._symbols.setdefault(day, Counter()).update(symbols)

    def __bool__(self) -> bool:
        return bool(self._outcomes)
