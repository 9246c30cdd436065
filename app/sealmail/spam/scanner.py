"""A spam scanner: rspamd's answer (``spam.rspamd``) turned into a decision by a set of rules —
the MX's (``spam.policy``, the default) or submission's (``spam.outbound``) — with the
``rspamd_unavailable`` fallback when there is none. One per MX session process or submission process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from sealmail.crypto.sealed import Buffer
from sealmail.spam import policy
from sealmail.spam.rspamd import RspamdClient, RspamdUnavailable, ScanRequest, ScanResult

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.spam")


class RspamdScanner:
    def __init__(
        self,
        settings: Settings,
        decide: Callable[[ScanResult], policy.SpamDecision] = policy.decide,
        unavailable: Callable[[Literal["accept", "tempfail"]], policy.SpamDecision] = policy.unavailable,
    ) -> None:
        assert settings.rspamd_url is not None
        self.client = RspamdClient(settings.rspamd_url, settings.rspamd_timeout)
        self.fallback = settings.rspamd_unavailable
        self._decide = decide
        self._unavailable = unavailable

    async def scan(self, message: Sequence[Buffer], request: ScanRequest) -> policy.SpamDecision:
        try:
            result = await self.client.check(message, request)
        except RspamdUnavailable as exc:
            # Logged with the queue id only: never the message, never its addresses.
            log.warning(
                "rspamd at %s gave no answer for %s (%s): %s", self.client.url, request.queue_id, exc, self.fallback
            )
            return self._unavailable(self.fallback)
        decision = self._decide(result)
        log.info("rspamd: %s score %.2f for %s -> %s", result.action, result.score, request.queue_id, decision.status)
        return decision

    async def close(self) -> None:
        await self.client.close()
