"""When an auto-reply may be sent (RFC 5230 §4.5-4.6, RFC 3834 §2), and the key that remembers it.

Pure: the "once per sender per ``:days``" memory belongs to the delivery code, which stores
:func:`reply_key` values -- an HMAC, so the store holds no address in clear -- with an expiry.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sealmail.sieve.message import Message

DEFAULT_DAYS = 7  # RFC 5230 §4.1
MIN_DAYS = 1  # RFC 5230 §4.1: ":days 0" means the minimum
MAX_DAYS = 60
# RFC 5230 §4.6 / RFC 3834 §2: addresses that are programs, not people
_ROBOT_LOCALS = frozenset(("mailer-daemon", "listserv", "majordomo", "postmaster", "noreply", "no-reply"))
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def clamp_days(days: int | None) -> int:
    if days is None:
        return DEFAULT_DAYS
    return min(max(days, MIN_DAYS), MAX_DAYS)


def default_subject(message: Message) -> str:
    """RFC 5230 §4.3's default: "Auto: " and the original subject (RFC 3834 §3.1.5)."""
    subject = " ".join((message.values("subject") or [""])[0].split())
    return f"Auto: {subject}" if subject else "Automated reply"


def refusal(message: Message, mail_from: str, own_addresses: Iterable[str]) -> str | None:
    """Why no auto-reply may go to this message's sender, or ``None`` when one may."""
    sender = mail_from.strip().lower()
    if not sender or "@" not in sender:
        return "null return path"  # RFC 3834 §2: bounces and the like
    auto = (message.values("auto-submitted") or ["no"])[0].split(";")[0].strip().lower()
    if auto != "no":
        return "Auto-Submitted"  # RFC 3834 §2, RFC 5230 §4.6
    precedence = {v.strip().lower() for v in message.values("precedence")}
    if precedence & {"bulk", "list", "junk"}:
        return "Precedence"
    if any(name.startswith("list-") for name in message.field_names()):
        return "mailing list"  # RFC 2369, RFC 2919 fields
    local = sender.rpartition("@")[0]
    if local in _ROBOT_LOCALS or local.startswith("owner-") or local.endswith(("-request", "-owner", "-bounces")):
        return "sender is a program"  # RFC 5230 §4.6
    own = {a.strip().lower() for a in own_addresses if a.strip()}
    if sender in own:
        return "sender is the recipient"  # never answer ourselves (RFC 5230 §4.5)
    listed = {
        f"{local}@{domain}".lower()
        for name in _RECIPIENT_FIELDS
        for address in message.addresses(name)
        if address is not None
        for local, domain in [address]
    }
    if not listed & own:
        return "recipient not in To, Cc or Bcc"  # RFC 5230 §4.5: mail sent to a list or as Bcc
    return None


def allowed(message: Message, mail_from: str, own_addresses: Iterable[str]) -> bool:
    return refusal(message, mail_from, own_addresses) is None


def reply_key(secret: bytes, alias: str, sender: str, handle: str) -> str:
    """What the once-per-period memory stores for (alias, sender, handle): no address in clear."""
    data = "\0".join((alias.lower(), sender.strip().lower(), handle)).encode("utf-8", "surrogatepass")
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def default_handle(reason: str, subject: str | None, sender: str | None, mime: bool) -> str:
    """RFC 5230 §4.2: without ``:handle``, replies differ when what they say differs."""
    text = "\0".join((reason, subject or "", sender or "", "mime" if mime else ""))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
