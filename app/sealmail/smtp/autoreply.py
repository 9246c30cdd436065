"""A Sieve ``vacation`` reply (RFC 5230, RFC 3834): the message, and the memory that sends it once.

Whether a reply may go at all is the language core's rule (``sieve.vacation``: never to a null
return path, to lists, bulk or auto-submitted mail, to programs or to our own addresses). Here:

* :func:`build` writes the reply: ``From`` the address the message came to (or ``:from`` when it is
  at the alias's own domain, so the DKIM signature aligns), ``To`` the envelope sender (RFC 5230 §4.5
  answers the return path), ``Subject`` (``:subject`` or "Auto: " and the original's), ``In-Reply-To``
  and ``References`` (RFC 5230 §5.8, RFC 3834 §3.1.5), ``Auto-Submitted: auto-replied`` (RFC 3834
  §5); the reason as a text/plain UTF-8 body, or with ``:mime`` as the MIME part it is (RFC 5230 §4.4).
  It goes from the null sender (RFC 3834 §3.3, RFC 5230 §5), so it can never cause a bounce.
* :class:`Memory` keeps "answered" for ``:days`` under the core's HMAC ``reply_key``: in Redis,
  shared by every MX host (``SET NX`` with a TTL: one host wins, the key says nothing readable), or
  in this process's memory without Redis.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sealmail.mime.headers import top_values
from sealmail.sieve.actions import Vacation
from sealmail.smtp.lineends import to_wire

log = logging.getLogger("sealmail.mx")
KEY_PREFIX = "sealmail:vacation:"
_MAX_REFERENCES = 20  # message ids carried on in References (RFC 5322 §3.6.4 allows trimming)


def reply_from(vacation: Vacation, recipient: str, alias_domain: str) -> str:
    """The From address: ``:from`` when it is an address at the alias's domain, else ``recipient``."""
    if vacation.sender:
        name, address = email.utils.parseaddr(vacation.sender)
        local, at, domain = address.rpartition("@")
        if local and at and domain.lower().rstrip(".") == alias_domain.lower():
            return email.utils.formataddr((name, address)) if name else address
        log.info("vacation :from is not an address of the alias's domain; the reply is sent from %s", recipient)
    return recipient


def build(vacation: Vacation, original_head: bytes, sender: str, domain: str, now: datetime | None = None) -> bytes:
    """The reply to a message whose header is ``original_head`` (CRLF line ends, ready to sign)."""
    # Encoded words (RFC 2047) in an ASCII header unless an address itself needs UTF-8 (RFC 6532).
    utf8 = not (sender.isascii() and vacation.recipient.isascii())
    reply = email.message.EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    reply["From"] = sender
    reply["To"] = vacation.recipient
    reply["Subject"] = vacation.subject
    reply["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
    reply["Message-ID"] = email.utils.make_msgid(domain=domain.encode("idna").decode("ascii"))
    message_id = _message_id(original_head)
    if message_id:
        reply["In-Reply-To"] = message_id
        references = [*_references(original_head), message_id][-_MAX_REFERENCES:]
        reply["References"] = " ".join(references)
    reply["Auto-Submitted"] = "auto-replied (vacation)"
    if not vacation.mime:
        # quoted-printable: any next hop takes it, with or without 8BITMIME (RFC 6152)
        reply.set_content(
            vacation.reason, charset="utf-8", cte="7bit" if vacation.reason.isascii() else "quoted-printable"
        )
        return to_wire(reply.as_bytes())
    # RFC 5230 §4.4: the reason is a MIME entity (its own Content-Type and body) and is sent as it is.
    reply["MIME-Version"] = "1.0"
    head = reply.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return to_wire(head + vacation.reason.encode("utf-8", "surrogatepass"))


def _message_id(head: bytes) -> str | None:
    for value in top_values(head, "message-id"):
        found = value.decode("utf-8", "replace").split()
        if found and found[0].startswith("<") and found[0].endswith(">"):
            return found[0]
    return None


def _references(head: bytes) -> list[str]:
    for value in top_values(head, "references"):
        return [w for w in value.decode("utf-8", "replace").split() if w.startswith("<") and w.endswith(">")]
    return []


class Memory:
    """ "Answered" per reply key for ``days``: Redis (every MX host) when there is one, else this process."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._local: dict[str, float] = {}

    async def claim(self, key: str, days: int) -> bool:
        """True when no reply went under ``key`` within ``days`` (and now one counts as sent)."""
        seconds = days * 86400
        if self.redis is not None:
            return bool(await self.redis.set(KEY_PREFIX + key, b"1", nx=True, ex=seconds))
        now = time.time()
        if self._local.get(key, 0.0) > now:
            return False
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v > now}
        self._local[key] = now + seconds
        return True

    async def release(self, key: str) -> None:
        """Forget a claim whose reply could not be queued (the next message may try again)."""
        if self.redis is not None:
            await self.redis.delete(KEY_PREFIX + key)
        else:
            self._local.pop(key, None)
