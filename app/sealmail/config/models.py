"""Records kept in the config store (never mail content, never passwords or unwrapped keys)."""

from __future__ import annotations

import itertools
import math
import re
import secrets
import threading
import time
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from sealmail.addresses import AliasKind
from sealmail.errors import InvalidInput

DisabledReply = Literal["drop", "defer", "reject"]
LogKind = Literal["delivery", "error", "audit"]  # audit: every write made through the API or web admin


def now() -> datetime:
    """UTC, truncated to milliseconds: the precision both backends (BSON dates) can keep."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


_last_id = 0
_id_lock = threading.Lock()


def new_id() -> str:
    """24 hex characters: milliseconds since the epoch (48 bits), then 48 random bits.

    Ids sort in creation order (within one process even for several ids in the same millisecond,
    which is what "oldest regex alias first" relies on) and never encode names or addresses.
    """
    global _last_id  # noqa: PLW0603 - one monotonic counter per process
    candidate = (time.time_ns() // 1_000_000) << 48 | secrets.randbits(48)
    with _id_lock:
        _last_id = max(candidate, _last_id + 1)
        return f"{_last_id:024x}"


@dataclass(slots=True)
class Domain:
    name: str  # ASCII (A-label) form: the unique key
    unicode_name: str
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)
    # rspamd scores at which mail to this domain is refused, deferred, or filed in Junk; None: rspamd's
    # own action decides that band (``spam.policy``). Checked by ``check_spam_thresholds``.
    spam_reject: float | None = None
    spam_defer: float | None = None
    spam_junk: float | None = None


MAX_SPAM_THRESHOLD = 1000.0


def check_spam_thresholds(reject: float | None, defer: float | None, junk: float | None) -> None:
    """``InvalidInput`` unless each threshold given is a number in (0, 1000] and junk < defer < reject.

    The order is the order of the bands: a score high enough to refuse is high enough for Junk."""
    given = {"reject": reject, "defer": defer, "junk": junk}
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInput(f"the {name} threshold must be a number")
        if not 0 < value <= MAX_SPAM_THRESHOLD:
            raise InvalidInput(f"the {name} threshold must be above 0 and at most {MAX_SPAM_THRESHOLD:g}")
    ordered = [
        (name, value) for name, value in (("junk", junk), ("defer", defer), ("reject", reject)) if value is not None
    ]
    for (low, low_value), (high, high_value) in itertools.pairwise(ordered):
        if low_value >= high_value:
            raise InvalidInput(
                f"the {high} threshold ({high_value:g}) must be above the {low} threshold ({low_value:g})"
            )


@dataclass(slots=True)
class Alias:
    domain: str  # ASCII name of the domain
    kind: AliasKind
    name: str  # normalised local part, "*", or "/pattern/"
    recipients: list[str] = field(default_factory=list)  # forwarding addresses and webhook URLs
    storage: bool = False  # has an encrypted mailbox (IMAP/POP3/DAV)
    enabled: bool = True
    disabled_reply: DisabledReply = "reject"  # what mail to a disabled alias gets
    quota: int | None = None  # bytes; None means the server default
    description: str = ""
    sending_blocked: bool = False  # an administrator stopped its submission (550 5.7.1 at MAIL FROM)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass(slots=True)
class AliasCredential:
    """How an alias proves itself, and its mailbox keys in wrapped form (the server cannot unwrap them).

    ``password_hash`` is an Argon2id verifier (SMTP submission checks it). For an alias with a
    mailbox, ``key_*`` hold the mailbox key and the spool's X25519 private key wrapped with a KEK
    derived from the same password (see ``sealmail.crypto.keys``), ``recovery_*`` the same two keys
    wrapped with the optional recovery key, and ``public_key`` lets the MX seal mail for it.
    """

    alias_id: str
    password_hash: str
    mailbox_id: str | None = None  # random; names the mailbox and spool files
    public_key: bytes | None = None
    key_salt: bytes | None = None
    key_kdf: str | None = None
    key_mailbox: bytes | None = None
    key_private: bytes | None = None
    recovery_salt: bytes | None = None
    recovery_mailbox: bytes | None = None
    recovery_private: bytes | None = None
    usage_bytes: int | None = None  # the mailbox's size as its last session saw it (quota checks at RCPT)
    # The self-service area's TOTP secret (RFC 6238), sealed with a key derived from the mailbox key
    # (``crypto.keys.seal_with_mailbox_key``): only a sign-in with the password can read it.
    totp_secret: bytes | None = None
    # SCRAM verifiers of the same password for ManageSieve's SCRAM-SHA-1/-256 (RFC 5804 §2.1), one
    # RFC 5803 value per line; never the password, see ``sealmail.crypto.scram``.
    scram: str | None = None
    updated_at: datetime = field(default_factory=now)

    @property
    def has_keys(self) -> bool:
        return self.mailbox_id is not None and self.key_mailbox is not None


@dataclass(slots=True)
class AdminAccount:
    email: str
    password_hash: str
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)  # hashes of unused codes
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)
    last_login_at: datetime | None = None


@dataclass(slots=True)
class ApiToken:
    name: str
    token_hash: str  # SHA-256 of the token; the token itself is shown once
    scopes: list[str] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # None: an administrator's token (its scopes say what it may do); an alias id: the token a user
    # made for their own alias, good for that alias's own operations only (``/v1/me``).
    alias_id: str | None = None


@dataclass(slots=True)
class LogEntry:
    """One event of the delivery or error log: metadata only, never content."""

    kind: LogKind
    component: str
    status: str  # e.g. stored, forwarded, deferred, bounced, rejected, failed
    _: KW_ONLY  # the rest by name: eight positional strings were easy to get in the wrong order
    domain: str | None = None
    address: str | None = None
    message_id: str | None = None
    peer: str | None = None
    detail: str = ""
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=now)


@dataclass(slots=True)
class LogQuery:
    kind: LogKind | None = None
    domain: str | None = None
    address: str | None = None
    status: str | None = None
    components: list[str] | None = None  # any of these components (e.g. ["smtp", "jobs"]: outbound)
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = 50
    cursor: str | None = None  # from the previous page's next_cursor


@dataclass(slots=True)
class LogPage:
    entries: list[LogEntry]
    next_cursor: str | None


# ---- DKIM signing keys, shared by every host of a deployment -----------------------------------------
@dataclass(slots=True)
class DkimKeyRecord:
    """A domain's DKIM private key (PKCS#8 PEM) as every host signs with it (``services.dkim``).

    Kept in the config store so that hosts sharing one (several front-ends) sign with the key
    whose public half DNS publishes, whichever host made it. The first key stored for a domain
    and algorithm stays: a new one would break every signature until DNS follows.
    """

    domain: str  # ASCII form
    algorithm: str  # "rsa" | "ed25519"
    pem: str
    created_at: datetime


# ---- the store component (issue 19): which data host holds which mailbox ----------------------------
@dataclass(slots=True)
class MailboxHome:
    """The data host whose store component serves a mailbox (``settings.store_host`` on that host)."""

    mailbox_id: str
    host: str
    updated: datetime


# ---- Sieve scripts (issue 22): each alias's filters, run by the MX while the user is offline ----------
MAX_SIEVE_SCRIPTS = 16  # per alias
MAX_SIEVE_SCRIPT_BYTES = 64 * 1024  # one script's UTF-8 text
MAX_SIEVE_NAME = 128  # characters (RFC 5804 §1.6: a server must allow at least 128 octets)
# RFC 5804 §1.6: no control characters (C0, DEL, C1), no line or paragraph separator.
_SIEVE_NAME_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(slots=True)
class SieveScript:
    """One of an alias's Sieve scripts. The server reads it in the clear: the MX runs it at delivery."""

    alias_id: str
    name: str
    content: str
    active: bool = False
    updated_at: datetime = field(default_factory=now)


def check_sieve_name(name: str) -> str:
    if not name or len(name) > MAX_SIEVE_NAME or _SIEVE_NAME_FORBIDDEN.search(name):
        raise InvalidInput(
            f"a script name is 1 to {MAX_SIEVE_NAME} characters without control characters or line separators"
        )
    return name


# ---- spam statistics (issue 21): counters per UTC day, summed by every MX host ----------------------
SPAM_OUTCOMES = ("scanned", "rejected", "deferred", "junk", "unchecked")
_SYMBOL = re.compile(r"[A-Za-z0-9_]{1,64}")  # rspamd's symbol names; also safe as MongoDB field names
MAX_SYMBOLS_PER_ADD = 1000


@dataclass(slots=True)
class SpamCounts:
    """One UTC day of the spam filter's numbers: messages per outcome (``SPAM_OUTCOMES``) and, per
    rspamd symbol, the messages it fired on. Counts only: no address, no content, no row per message."""

    day: date
    outcomes: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, int] = field(default_factory=dict)


def check_spam_counts(counts: SpamCounts) -> None:
    """``InvalidInput`` unless the outcomes are known, the symbols look like rspamd's and counts are whole >= 0."""
    if not isinstance(counts.day, date) or isinstance(counts.day, datetime):
        raise InvalidInput("spam counts need a day")
    unknown = set(counts.outcomes) - set(SPAM_OUTCOMES)
    if unknown:
        raise InvalidInput(f"unknown spam outcome(s): {', '.join(sorted(unknown))}")
    if len(counts.symbols) > MAX_SYMBOLS_PER_ADD:
        raise InvalidInput(f"at most {MAX_SYMBOLS_PER_ADD} symbols at once")
    for name in counts.symbols:
        if not isinstance(name, str) or not _SYMBOL.fullmatch(name):
            raise InvalidInput("a symbol name is letters, digits and underscores (at most 64)")
    for value in (*counts.outcomes.values(), *counts.symbols.values()):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput("spam counts are whole numbers, not negative")


# ---- DMARC aggregate and SMTP TLS reports (issue 23): what other mail servers say about our domains ---
# Read at the MX from mail to the report addresses (``reports``), stored here, shown in the web admin
# and the API. Operational numbers about mail, never a message: addresses of servers, domains, counts.
MAX_REPORT_ROWS = 5000  # records of one DMARC report; policies plus failure lines of one TLS report
MAX_REPORT_TEXT = 255  # characters kept of any one text a reporter sends (names, ids, reasons)


@dataclass(frozen=True, slots=True)
class DmarcRow:
    """One ``<record>`` of an aggregate report (RFC 7489 appendix C): messages from one source
    address with one outcome."""

    source_ip: str
    count: int
    disposition: str  # what the receiver did: none, quarantine, reject
    dkim: str  # the DMARC evaluation's DKIM result (aligned): pass or fail
    spf: str  # the same for SPF
    header_from: str
    envelope_from: str = ""
    dkim_auth: list[str] = field(default_factory=list)  # "domain=result" of each DKIM signature checked
    spf_auth: str = ""  # "domain=result" of the SPF check (MAIL FROM or HELO domain)


@dataclass(slots=True)
class DmarcReport:
    """A DMARC aggregate report about one of our domains, as one receiver saw its mail."""

    org_name: str  # the reporter ("google.com"); with report_id, what makes a report unique
    report_id: str
    domain: str  # policy_published/domain: ours, ASCII
    begin: datetime  # the period the report covers (UTC)
    end: datetime
    _: KW_ONLY
    org_email: str = ""
    policy: str = ""  # the policy it evaluated, "p=quarantine sp=quarantine pct=100 adkim=r aspf=r"
    rows: list[DmarcRow] = field(default_factory=list)
    # The report message's own DMARC result at our MX: "pass" says the reporter's domain sent it.
    carrier_dmarc: str = "none"
    id: str = field(default_factory=new_id)
    received_at: datetime = field(default_factory=now)

    @property
    def messages(self) -> int:
        return sum(row.count for row in self.rows)


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """One ``policies`` entry of an SMTP TLS report (RFC 8460 §4.4): a policy and its summary."""

    domain: str  # policy-domain: ours, ASCII
    policy_type: str  # sts, tlsa or no-policy-found
    successful: int  # total-successful-session-count
    failed: int  # total-failure-session-count
    mx_hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TlsFailure:
    """One ``failure-details`` line (RFC 8460 §4.3, §4.4) of a policy of ``domain``."""

    domain: str
    result_type: str  # starttls-not-supported, certificate-expired, validation-failure, ...
    sessions: int  # failed-session-count
    receiving_mx: str = ""  # receiving-mx-hostname
    receiving_ip: str = ""
    sending_ip: str = ""  # sending-mta-ip: the reporter's server
    reason: str = ""  # failure-reason-code or additional-information, when given


@dataclass(slots=True)
class TlsReport:
    """An SMTP TLS report (RFC 8460): how one sender's TLS sessions to our MX went."""

    org_name: str  # organization-name; with report_id, what makes a report unique
    report_id: str
    begin: datetime  # date-range (UTC)
    end: datetime
    _: KW_ONLY
    contact: str = ""  # contact-info
    policies: list[TlsPolicy] = field(default_factory=list)
    failures: list[TlsFailure] = field(default_factory=list)
    carrier_dmarc: str = "none"  # the report message's own DMARC result at our MX
    id: str = field(default_factory=new_id)
    received_at: datetime = field(default_factory=now)

    @property
    def domains(self) -> list[str]:
        return sorted({p.domain for p in self.policies})


def check_report(report: DmarcReport | TlsReport) -> None:
    """``InvalidInput`` unless a report is whole: a reporter and id, a period, bounded rows, counts >= 0."""
    if not report.org_name or not report.report_id:
        raise InvalidInput("a report needs its reporter's name and its report id")
    for text in (report.org_name, report.report_id):
        if len(text) > MAX_REPORT_TEXT:
            raise InvalidInput(f"a report's names and ids have at most {MAX_REPORT_TEXT} characters")
    if report.end < report.begin:
        raise InvalidInput("a report's period ends before it begins")
    if isinstance(report, DmarcReport):
        if not report.domain:
            raise InvalidInput("a DMARC report names the domain it is about")
        counts = [row.count for row in report.rows]
        size = len(report.rows)
    else:
        if not report.policies:
            raise InvalidInput("a TLS report has at least one policy")
        counts = [n for p in report.policies for n in (p.successful, p.failed)] + [f.sessions for f in report.failures]
        size = len(report.policies) + len(report.failures)
    if size > MAX_REPORT_ROWS:
        raise InvalidInput(f"a report may have at most {MAX_REPORT_ROWS} rows")
    for value in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput("a report's counts are whole numbers, not negative")
