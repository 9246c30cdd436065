"""What submission does with rspamd's answer about a message a signed-in user sends (the MX's
rules are ``spam.policy``).

A compromised account must not spray spam from our addresses, but a user's own mail must not
vanish either, so the line is drawn where rspamd's default thresholds draw it (and as mailcow does
for authenticated senders):

* ``reject`` -> ``550 5.7.1`` (RFC 3463 §3.8: delivery not authorized, message refused) with
  rspamd's message made one printable line (``policy.sanitise``): the user's client shows it, and
  the message stays in the user's outbox or drafts;
* ``soft reject`` and ``greylist`` -> ``451 4.7.1`` (RFC 5321 §4.2.2: try again later);
* ``add header`` and ``rewrite subject`` -> sent as it is, and *flagged*: the log line and the
  delivery log say so with the score, so an operator sees an account drifting towards spam. No
  ``X-Spam-*`` field is added: the recipient's own filter judges the mail, and our score would only
  tell the world how we scan;
* anything else -> sent.

When rspamd gave no answer, ``rspamd_unavailable`` decides as on the MX: send it (logged,
``unchecked``) or ``451 4.7.1`` so the client tries again.
"""

from __future__ import annotations

from typing import Literal

from sealmail.spam.policy import UNAVAILABLE_TEMPFAIL, SpamDecision, sanitise
from sealmail.spam.rspamd import ADD_HEADER, GREYLIST, REJECT, REWRITE_SUBJECT, SOFT_REJECT, ScanResult

FLAGGED = "flagged"  # sent, but in rspamd's add-header band


def decide(result: ScanResult) -> SpamDecision:
    """rspamd's answer as submission's decision (``reply`` set: refused)."""
    if result.action == REJECT:
        text = sanitise(result.smtp_message or "") or "Message refused as spam"
        return SpamDecision(reply=f"550 5.7.1 {text}", status="reject", score=result.score)
    if result.action in (SOFT_REJECT, GREYLIST):
        text = sanitise(result.smtp_message or "") or "Try again later"
        return SpamDecision(reply=f"451 4.7.1 {text}", status="defer", score=result.score)
    if result.action in (ADD_HEADER, REWRITE_SUBJECT):
        return SpamDecision(status=FLAGGED, score=result.score)
    return SpamDecision(status="ham", score=result.score)


def unavailable(mode: Literal["accept", "tempfail"]) -> SpamDecision:
    """No answer from rspamd: the ``rspamd_unavailable`` setting decides."""
    if mode == "tempfail":
        return UNAVAILABLE_TEMPFAIL
    return SpamDecision(status="unchecked")
