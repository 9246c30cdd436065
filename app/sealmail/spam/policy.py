"""What the MX does with rspamd's answer (the protocol is ``spam.rspamd``).

* ``reject`` -> ``550 5.7.1`` (RFC 3463 §3.8: delivery not authorized, message refused) with
  rspamd's message, made one printable line;
* ``soft reject`` and ``greylist`` -> ``451 4.7.1`` (RFC 5321 §4.2.2: try again later; RFC 3463
  X.7.1 the same policy reason, transient);
* ``add header`` and ``rewrite subject`` -> delivered to the alias's Junk folder with the score;
* anything else (``no action``) -> INBOX.

A hosted domain may set its own score thresholds (``Thresholds``: reject, defer, junk); each one set
replaces rspamd's action for its band, on rspamd's score (``band``). An answer rspamd forced
(``is_skipped``: GTUBE, a settings rule, a rate limit) keeps rspamd's action whatever the domain says.

One message, one reply (RFC 5321 §4.2.5: a single reply after DATA serves every recipient), yet
recipients in several domains may see the message differently (``decide_message``): it is refused
(550) only when every recipient's domain would refuse it, deferred (451) when none would take it
and one would defer; otherwise it is accepted, and a recipient whose own domain would have refused
or deferred it gets it in Junk (refusing it for everyone would lose it for the domains that want
it; bouncing it later would send backscatter).

Every message that is stored carries ``X-Spam-Status`` and ``X-Spam-Score`` (and, when rspamd
answered, ``X-Spam-Symbols``), so a user's client can see why. When rspamd gave no answer, the
``rspamd_unavailable`` setting decides: accept the message marked ``X-Spam-Status: unchecked``, or
``451 4.7.1`` so the sender retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


Band = Literal["inbox", "junk", "defer", "reject"]
_RSPAMD_BANDS: dict[str, Band] = {
    REJECT: "reject",
    SOFT_REJECT: "defer",
    GREYLIST: "defer",
    ADD_HEADER: "junk",
    REWRITE_SUBJECT: "junk",
}
_SEVERITY: dict[Band, int] = {"inbox": 0, "junk": 1, "defer": 2, "reject": 3}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A domain's own scores: at or above ``reject`` refuse, ``defer`` try later, ``junk`` file in Junk.
    None leaves that band to rspamd's action. The config store checks junk < defer < reject."""

    reject: float | None = None
    defer: float | None = None
    junk: float | None = None

    @property
    def empty(self) -> bool:
        return self.reject is None and self.defer is None and self.junk is None


@dataclass(frozen=True, slots=True)
class SpamDecision:
    reply: str | None = None  # an SMTP reply when the message is refused (now or for now)
    junk: bool = False
    header: bytes = b""  # X-Spam-* fields (CRLF-terminated) to put before the stored message
    status: str = "unchecked"  # for the log: ham, spam, reject, defer, unchecked (submission: flagged)
    score: float | None = None  # rspamd's score, when it answered
    # The score this domain's Junk starts at, as far as the MX knows it, for Sieve's spamtest (RFC 5235):
    # the domain's own threshold; else the message's score when rspamd's own action filed it in Junk
    # (rspamd's answer does not say where its "add header" band starts); else rspamd's reject score.
    junk_at: float | None = None


@dataclass(frozen=True, slots=True)
class MessageSpam:
    """The decision on one message for all its recipients: the reply, and each domain's filing."""

    reply: str | None  # refused (now or for now) for every recipient
    status: str  # off, ham, spam (some recipient gets Junk), reject, defer, unchecked
    default: SpamDecision  # recipients of a domain not in ``by_domain``
    by_domain: Mapping[str, SpamDecision] = field(default_factory=dict)  # ASCII domain -> its decision
    symbols: tuple[str, ...] = ()  # the symbols that counted (``counted_symbols``), for the statistics

    def for_domain(self, domain: str) -> SpamDecision:
        return self.by_domain.get(domain, self.default)


OFF = MessageSpam(reply=None, status="off", default=SpamDecision(status="off"))


def band(result: ScanResult, thresholds: Thresholds | None = None) -> Band:
    """Which band rspamd's answer falls in for a domain with ``thresholds``.

    Each threshold set decides its band on the score; an unset one leaves it to rspamd's action,
    where rspamd's reject counts as past its add-header threshold too (rspamd's own order), so a
    domain that only raises ``reject`` still files such a message in Junk."""
    rspamd = _RSPAMD_BANDS.get(result.action, "inbox")
    if thresholds is None or thresholds.empty or result.skipped:
        return rspamd
    score = result.score
    if score >= thresholds.reject if thresholds.reject is not None else rspamd == "reject":
        return "reject"
    if score >= thresholds.defer if thresholds.defer is not None else rspamd == "defer":
        return "defer"
    if score >= thresholds.junk if thresholds.junk is not None else rspamd in ("junk", "reject"):
        return "junk"
    return "inbox"


def decide(result: ScanResult, thresholds: Thresholds | None = None) -> SpamDecision:
    """rspamd's answer as the MX's decision for the recipients of one domain."""
    found = band(result, thresholds)
    # rspamd's message explains rspamd's action: it is said only when that is the band replied
    own = sanitise(result.smtp_message or "") if _RSPAMD_BANDS.get(result.action) == found else ""
    if found == "reject":
        return SpamDecision(reply=f"550 5.7.1 {own or 'Message rejected as spam'}", status="reject")
    if found == "defer":
        return SpamDecision(reply=f"451 4.7.1 {own or 'Try again later'}", status="defer")
    junk = found == "junk"
    required = thresholds.reject if thresholds is not None and thresholds.reject is not None else result.required_score
    return SpamDecision(
        junk=junk,
        header=_headers(result, junk, required),
        status="spam" if junk else "ham",
        score=result.score,
        junk_at=_junk_at(result, thresholds, junk),
    )


def _junk_at(result: ScanResult, thresholds: Thresholds | None, junk: bool) -> float:
    if thresholds is not None and thresholds.junk is not None:
        return thresholds.junk
    if junk:
        return min(result.score, result.required_score)
    return result.required_score


def decide_message(result: ScanResult, domains: Mapping[str, Thresholds | None]) -> MessageSpam:
    """The decision for a message whose recipients are in ``domains`` (each with its thresholds).

    The reply is the most lenient of the domains' decisions; a domain whose own decision was
    harsher than the reply gets the message in Junk, marked as spam (see the module docstring)."""
    # One decision per distinct set of thresholds: most messages have one, the domains without any
    decided: dict[Thresholds | None, SpamDecision] = {}

    def for_thresholds(thresholds: Thresholds | None) -> SpamDecision:
        key = None if thresholds is None or thresholds.empty else thresholds
        if key not in decided:
            decided[key] = decide(result, key)
        return decided[key]

    default = for_thresholds(None)
    symbols = counted_symbols(result)
    if not domains:
        return MessageSpam(default.reply, default.status, default, {}, symbols)
    decisions = {name: for_thresholds(thresholds) for name, thresholds in domains.items()}
    lenient = min(decisions.values(), key=lambda d: _SEVERITY[_band_of(d)])
    if lenient.reply is not None:  # no domain takes it
        return MessageSpam(lenient.reply, lenient.status, lenient, decisions, symbols)
    filed = {
        name: d
        if d.reply is None
        else SpamDecision(
            junk=True, header=_headers(result, True, None), status="spam", score=result.score, junk_at=result.score
        )
        for name, d in decisions.items()
    }
    status = "spam" if any(d.junk for d in filed.values()) else "ham"
    return MessageSpam(None, status, default, filed, symbols)


def _band_of(decision: SpamDecision) -> Band:
    if decision.reply is not None:
        return "reject" if decision.reply.startswith("5") else "defer"
    return "junk" if decision.junk else "inbox"


# ``rspamd_unavailable = tempfail``: the sender (MX) or the user's client (submission) tries again later.
UNAVAILABLE_TEMPFAIL = SpamDecision(reply="451 4.7.1 Spam filter unavailable, try again later", status="defer")


def unavailable(mode: Literal["accept", "tempfail"]) -> MessageSpam:
    """No answer from rspamd: the ``rspamd_unavailable`` setting decides."""
    if mode == "tempfail":
        decision = UNAVAILABLE_TEMPFAIL
    else:
        decision = SpamDecision(header=b"X-Spam-Status: unchecked\r\n", status="unchecked")
    return MessageSpam(decision.reply, "unchecked", decision)


def counted_symbols(result: ScanResult) -> tuple[str, ...]:
    """The symbols the statistics count for a message: those that moved its score, and every
    symbol of an answer rspamd forced (GTUBE decides with a score of its own). Rules that fire on
    nearly everything at 0 (ARC_NA, RCPT_COUNT_ONE) would only crowd the top of the table."""
    return tuple(s.name for s in result.symbols if _counter_name(s.name) and (s.score or result.skipped))


def sanitise(text: str) -> str:
    """One printable ASCII line of rspamd's message, safe to put in an SMTP reply.

    The reply is ours to send: a CR or LF would start a line the client reads as another reply, and
    a control character or non-ASCII octet has no place in it (RFC 5321 §4.2: text is printable)."""
    kept = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return " ".join(kept.split())[:_MAX_REPLY_TEXT]


def _headers(result: ScanResult, junk: bool, required: float | None = None) -> bytes:
    status = "Yes" if junk else "No"
    required = result.required_score if required is None else required
    lines = [
        f"X-Spam-Status: {status}, score={result.score:.2f} required={required:.2f}",
        f"X-Spam-Score: {result.score:.2f}",
    ]
    symbols = ", ".join(f"{s.name}({s.score:.2f})" for s in result.symbols if _safe_name(s.name))
    if symbols:
        lines.append("X-Spam-Symbols: " + _fold(symbols[:_MAX_SYMBOLS_HEADER], len("X-Spam-Symbols: ")))
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _safe_name(name: str) -> bool:
    return bool(name) and all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in name)


def _counter_name(name: str) -> bool:
    """A name the statistics keep (the config store takes letters, digits and underscores, 64 at most)."""
    return 0 < len(name) <= 64 and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name)


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
