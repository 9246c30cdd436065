"""The spam scanner the MX and submission run: rspamd's answer (``spam.rspamd``) turned into a
decision by their rules — the MX's for the recipients' domains (``spam.policy``), submission's for
a signed-in sender (``spam.outbound``) — with the ``rspamd_unavailable`` fallback when there is
none. One per MX session process or submission process."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sealmail.crypto.sealed import Buffer
from sealmail.spam import outbound, policy
from sealmail.spam.rspamd import RspamdClient, RspamdUnavailable, ScanRequest, ScanResult

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.spam")


class RspamdScanner:
    def __init__(self, settings: Settings) -> None:
        assert settings.rspamd_url is not None
        self.client = RspamdClient(settings.rspamd_url, settings.rspamd_timeout)
        self.fallback = settings.rspamd_unavailable

    async def scan(
        self, message: Sequence[Buffer], request: ScanRequest, domains: Mapping[str, policy.Thresholds | None]
    ) -> policy.MessageSpam:
        """The MX's decision for a message to recipients in ``domains`` (ASCII name -> its own thresholds)."""
        result = await self._check(message, request)
        if result is None:
            return policy.unavailable(self.fallback)
        decision = policy.decide_message(result, domains)
        log.info("rspamd: %s score %.2f for %s -> %s", result.action, result.score, request.queue_id, decision.status)
        return decision

    async def scan_outbound(self, message: Sequence[Buffer], request: ScanRequest) -> policy.SpamDecision:
        """Submission's decision for a message a signed-in user sends."""
        result = await self._check(message, request)
        if result is None:
            return outbound.unavailable(self.fallback)
        decision = outbound.decide(result)
        log.info("rspamd: %s score %.2f for %s -> %s", result.action, result.score, request.queue_id, decision.status)
        return decision

    async def _check(self, message: Sequence[Buffer], request: ScanRequest) -> ScanResult | None:
        try:
            return await self.client.check(message, request)
        except RspamdUnavailable as exc:
            # Logged with the queue id only: never the message, never its addresses.
            log.warning(
                "rspamd at %s gave no answer for %s (%s): %s", self.client.url, request.queue_id, exc, self.fallback
            )
            return None

    async def close(self) -> None:
        await self.client.close()
