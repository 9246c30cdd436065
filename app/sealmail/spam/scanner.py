"""The MX's spam scanner: rspamd's answer (``spam.rspamd``) turned into a decision (``spam.policy``)
for the recipients' domains, with the ``rspamd_unavailable`` fallback when there is none. One per MX
session process."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sealmail.crypto.sealed import Buffer
from sealmail.spam import policy
from sealmail.spam.rspamd import RspamdClient, RspamdUnavailable, ScanRequest

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
        """The decision for a message to recipients in ``domains`` (ASCII name -> its own thresholds)."""
        try:
            result = await self.client.check(message, request)
        except RspamdUnavailable as exc:
            # Logged with the queue id only: never the message, never its addresses.
            log.warning(
                "rspamd at %s gave no answer for %s (%s): %s", self.client.url, request.queue_id, exc, self.fallback
            )
            return policy.unavailable(self.fallback)
        decision = policy.decide_message(result, domains)
        log.info("rspamd: %s score %.2f for %s -> %s", result.action, result.score, request.queue_id, decision.status)
        return decision

    async def close(self) -> None:
        await self.client.close()
