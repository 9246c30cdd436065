"""What the MX does with rspamd's answer (the protocol is ``spam.rspamd``).

* ``reject`` -> ``550 5.7.1`` (RFC 3463 §3.8: delivery not authorized, message refused) with
  rspamd's message, made one printable line;
* ``soft reject`` and ``greylist`` -> ``451 4.7.1`` (RFC 5321 §4.2.2: try again later; RFC 3463
  X.7.1 the same policy reason, transient);
* ``add header`` and ``rewrite subject`` -> delivered to the alias's Junk folder with the score;
* anything else (``no action``) -> INBOX.

Every message that is stored carries ``X-Spam-Status`` and ``X-Spam-Score`` (and, when rspamd
answered, ``X-Spam-Symbols``), so a user's client can see why. When rspamd gave no answer, the
``rspamd_unavailable`` setting decides: accept the message marked ``X-Spam-Status: unchecked``, or
``451 4.7.1`` so the sender retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sealmail.mime.headers import top_fields
from sealmail.spam.rspamd import ADD_HEADER, GREYLIST, REJECT, REWRITE_SUBJECT, SOFT_REJECT, ScanResult

# Fields a spam filter writes: a sender's own copies would read as our verdict to the user's client and
# filters, so they are cut from the incoming header when this server scans (as the Authentication-
# Results that claim our authserv-id are, RFC 8601 §5).
SPAM_FIELDS = frozenset(
    {b"x-spam-status", b"x-spam-score", b"x-spam-symbols", b"x-spam-flag", b"x-spam", b"x-spam-level"}
)
_MAX_REPLY_TEXT = 200  # rspamd's message in a reply line (RFC 5321 §4.5.3.1.5: 512 octets a line)
_MAX_SYMBOLS_HEADER = 900  # keep X-Spam-Symbols one reasonable field


@dataclass(frozen=True, slots=True)
class SpamDecision:
    reply: str | None = None  # an SMTP reply when the message is refused (now or for now)
    junk: bool = False
    header: bytes = b""  # X-Spam-* fields (CRLF-terminated) to put before the stored message
    status: str = "unchecked"  # for the log: ham, spam, reject, defer, unchecked (submission: flagged)
    score: float | None = None  # rspamd's score, when it answered


def decide(result: ScanResult) -> SpamDecision:
    """rspamd's answer as the MX's decision."""
    if result.action == REJECT:
        text = sanitise(result.smtp_message or "") or "Message rejected as spam"
        return SpamDecision(reply=f"550 5.7.1 {text}", status="reject")
    if result.action in (SOFT_REJECT, GREYLIST):
        text = sanitise(result.smtp_message or "") or "Try again later"
        return SpamDecision(reply=f"451 4.7.1 {text}", status="defer")
    junk = result.action in (ADD_HEADER, REWRITE_SUBJECT)
    return SpamDecision(junk=junk, header=_headers(result, junk), status="spam" if junk else "ham")


def unavailable(mode: Literal["accept", "tempfail"]) -> SpamDecision:
    """No answer from rspamd: the ``rspamd_unavailable`` setting decides."""
    if mode == "tempfail":
        return SpamDecision(reply="451 4.7.1 Spam filter unavailable, try again later", status="defer")
    return SpamDecision(header=b"X-Spam-Status: unchecked\r\n", status="unchecked")


def sanitise(text: str) -> str:
    """One printable ASCII line of rspamd's message, safe to put in an SMTP reply.

    The reply is ours to send: a CR or LF would start a line the client reads as another reply, and
    a control character or non-ASCII octet has no place in it (RFC 5321 §4.2: text is printable)."""
    kept = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return " ".join(kept.split())[:_MAX_REPLY_TEXT]


def _headers(result: ScanResult, junk: bool) -> bytes:
    status = "Yes" if junk else "No"
    lines = [
        f"X-Spam-Status: {status}, score={result.score:.2f} required={result.required_score:.2f}",
        f"X-Spam-Score: {result.score:.2f}",
    ]
    symbols = ", ".join(f"{s.name}({s.score:.2f})" for s in result.symbols if _safe_name(s.name))
    if symbols:
        lines.append("X-Spam-Symbols: " + _fold(symbols[:_MAX_SYMBOLS_HEADER], len("X-Spam-Symbols: ")))
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _safe_name(name: str) -> bool:
    return bool(name) and all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in name)


def _fold(value: str, used: int) -> str:
    """RFC 5322 §2.2.3: fold at the spaces between symbols to keep lines under 78 characters."""
    out: list[str] = []
    line = used
    for word in value.split(" "):
        if line + len(word) + 1 > 78 and out:
            out.append("\r\n\t" + word)
            line = 1 + len(word)
        else:
            out.append((" " if out else "") + word)
            line += len(word) + (1 if len(out) > 1 else 0)
    return "".join(out)


def spam_fields_cut(head: bytes) -> tuple[bytes, int] | None:
    """Incoming ``SPAM_FIELDS`` cut from the start of a message (``head``: its first bytes).

    Returns ``(start, resume)``: the message without them is ``start`` then the message from
    ``resume`` on; None when there was none. Only fields that end inside ``head`` are cut."""
    doomed = [(f.start, f.end) for f in top_fields(head) if f.name.lower() in SPAM_FIELDS and f.end < len(head)]
    if not doomed:
        return None
    out, pos = bytearray(), 0
    for start, end in doomed:
        out += head[pos:start]
        pos = end
    return bytes(out), pos
