"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sealmail.sieve.rules import Rules


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainIn(Strict):
    name: str = Field(min_length=1, max_length=253, examples=["universitéxyz.fr"])


class DomainOut(BaseModel):
    id: str
    name: str = Field(description="ASCII (A-label) form")
    unicode_name: str
    created_at: datetime
    spam_reject: float | None = Field(None, description="rspamd score refused with 550; null: rspamd's reject")
    spam_defer: float | None = Field(None, description="rspamd score deferred with 451; null: rspamd's soft reject")
    spam_junk: float | None = Field(None, description="rspamd score filed in Junk; null: rspamd's add header")


class DomainPatch(Strict):
    """The fields given change; an explicit null clears a threshold (rspamd's own action decides that band).
    Thresholds must rise: junk < defer < reject."""

    spam_reject: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False, examples=[12])
    spam_defer: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    spam_junk: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False, examples=[5])


class DnsRecordOut(BaseModel):
    name: str
    type: str
    value: str = Field(description="exactly what to publish")
    purpose: str
    priority: int | None = None
    zone: str = Field("", description="the hosted domain whose zone holds the record (ASCII)")
    status: Literal["pass", "missing", "wrong", "error"] | None = Field(
        None, description="live check through the server's resolver (with ?check=true)"
    )
    found: list[str] | None = None
    note: str | None = None


Quota = int | str | None


class AliasIn(Strict):
    address: str = Field(
        min_length=3, max_length=600, examples=["rémi@universitéxyz.fr", "*@example.com", "/^sales-.*$/@example.com"]
    )
    recipients: list[str] = Field(default_factory=list, max_length=100, description="addresses and https:// webhooks")
    storage: bool | None = Field(None, description="an encrypted mailbox; default: when there are no recipients")
    enabled: bool = True
    disabled_reply: Literal["drop", "defer", "reject"] = "reject"
    quota: Quota = Field(None, description="bytes, or text such as 2G; null: the server's default")
    description: str = Field("", max_length=1000)


class AliasPatch(Strict):
    recipients: list[str] | None = Field(None, max_length=100)
    storage: bool | None = None
    enabled: bool | None = None
    disabled_reply: Literal["drop", "defer", "reject"] | None = None
    quota: Quota = Field(None, description="bytes or text such as 2G; an explicit null restores the server default")
    description: str | None = Field(None, max_length=1000)
    sending_blocked: bool | None = Field(None, description="true: submission refuses it (550 5.7.1)")


class AliasOut(BaseModel):
    id: str
    address: str
    domain: str
    kind: Literal["exact", "catchall", "regex"]
    recipients: list[str]
    storage: bool
    enabled: bool
    disabled_reply: str
    quota: int | None = Field(description="the alias's own quota in bytes; null: the server default")
    quota_effective: int
    usage_bytes: int | None = Field(description="the mailbox size at its last session; null: never opened")
    description: str
    has_password: bool
    two_factor: bool = Field(description="its user turned on two-factor authentication for the account pages")
    sending_blocked: bool = Field(description="an administrator stopped it sending through submission")
    created_at: datetime
    updated_at: datetime


class SendingOut(BaseModel):
    """An alias at one of its hourly sending limits, or blocked from sending."""

    alias_id: str
    address: str | None = Field(description="null: the alias was removed since it sent")
    messages: int = Field(description="messages it sent in the last hour")
    recipients: int = Field(description="recipients of those messages")
    free_at: datetime | None = Field(description="when it may send to one recipient again; null: not at a limit")
    blocked: bool


class PasswordIn(Strict):
    current_password: str | None = Field(None, max_length=1024, description="keeps the mailbox's mail")
    recovery_key: str | None = Field(None, max_length=1024, description="keeps the mailbox's mail")
    reset_mailbox: bool = Field(False, description="without either: delete the mailbox and start an empty one")


class ClientSettingOut(BaseModel):
    protocol: str
    host: str
    port: int
    security: str
    username: str


class PasswordOut(BaseModel):
    address: str
    password: str = Field(description="shown once; only a verifier is stored")
    client_settings: list[ClientSettingOut]


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    alias_id: str | None = Field(None, description="set on a token a user made for their own address (/v1/me)")


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its SHA-256 is stored")


class LogEntryOut(BaseModel):
    id: str
    time: datetime
    kind: str
    component: str
    status: str
    domain: str | None
    address: str | None
    message_id: str | None
    peer: str | None
    detail: str


class LogPageOut(BaseModel):
    entries: list[LogEntryOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class SpamDayOut(BaseModel):
    day: date
    scanned: int = Field(description="messages rspamd answered for")
    rejected: int
    deferred: int
    junk: int = Field(description="accepted and filed in Junk for at least one recipient")
    unchecked: int = Field(description="rspamd gave no answer")


class SymbolOut(BaseModel):
    symbol: str
    messages: int = Field(description="messages it moved the score of")


class SpamStatsOut(BaseModel):
    days: list[SpamDayOut] = Field(description="one per UTC day, oldest first, zero-filled")
    totals: dict[str, int]
    top_symbols: list[SymbolOut]


# ---- /v1/me: a user's own address, with a token made in the self-service area -----------------------
class QuotaOut(BaseModel):
    used_bytes: int = Field(description="stored_bytes + waiting_bytes: what the quota counts")
    stored_bytes: int = Field(description="the mailbox's size as its last session left it")
    waiting_bytes: int = Field(description="new mail, sealed, not yet moved into the mailbox")
    limit_bytes: int


class MeOut(BaseModel):
    alias_id: str
    address: str
    quota: QuotaOut
    two_factor: bool = Field(description="the self-service area asks for a TOTP code at sign-in")
    recovery_key: bool = Field(description="a recovery key has been made")


class OwnPasswordIn(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=12, max_length=1024)


class PasswordCheckIn(Strict):
    password: str = Field(min_length=1, max_length=1024, description="the mailbox's current password")


class RecoveryKeyOut(BaseModel):
    recovery_key: str = Field(description="shown once; it replaces the previous one, which stops working")


class ExportIn(PasswordCheckIn):
    format: Literal["mbox", "eml"] = Field(
        "mbox", description="mbox: one mbox file per folder; eml: one .eml per message, a directory per folder"
    )


class BackupOut(BaseModel):
    run: str
    taken_at: datetime
    size_bytes: int


# ---- your own filters and vacation reply (/v1/me/sieve) ------------------------------------------------
class SieveErrorOut(BaseModel):
    time: datetime
    detail: str = Field(description="as the delivery log has it: the script, the line and what went wrong")


class SieveOut(BaseModel):
    name: str = Field(description="the script these rules are kept in")
    exists: bool
    active: bool = Field(description="whether it is the script that runs at delivery")
    active_script: str | None = Field(description="the name of the active script (another one: from a mail program)")
    rules: Rules | None = Field(description="the rules, or null when the script was edited by hand (see note)")
    note: str | None = None
    script: str = Field(description="the Sieve text (RFC 5228)")
    last_error: SieveErrorOut | None = Field(
        None, description="the active script's newest failure at delivery since it last changed (the message was kept)"
    )


class SieveIn(Strict):
    """Exactly one of ``rules`` and ``script``."""

    rules: Rules | None = None
    script: str | None = Field(None, max_length=64 * 1024)
    activate: bool | None = Field(
        None,
        description="null: make it active unless another script is (then 409 and nothing is stored); true: make it "
        "active; false: store it and leave the active script as it is",
    )


class SieveCheckIn(Strict):
    """Exactly one of ``rules`` and ``script``."""

    rules: Rules | None = None
    script: str | None = Field(None, max_length=64 * 1024)


class SieveCheckOut(BaseModel):
    script: str = Field(description="the Sieve text that was checked (for rules: what they are written as)")
    warnings: list[str] = Field(description="what is valid but probably not meant, each naming its line")


# ---- DMARC aggregate and SMTP TLS reports (issue 23) ---------------------------------------------------
class DmarcRowOut(BaseModel):
    source_ip: str
    count: int = Field(description="messages from this address with this outcome")
    disposition: str = Field(description="what the receiver did: none, quarantine or reject")
    dkim: str = Field(description="DKIM as the DMARC evaluation saw it (aligned): pass or fail")
    spf: str = Field(description="SPF as the DMARC evaluation saw it (aligned): pass or fail")
    header_from: str
    envelope_from: str
    dkim_auth: list[str] = Field(description='each DKIM signature checked, "domain=result"')
    spf_auth: str = Field(description='the SPF check, "domain=result"')


class DmarcReportOut(BaseModel):
    id: str = Field(description="this server's id of the report")
    org_name: str = Field(description="the receiver that sent it")
    report_id: str = Field(description="the receiver's id of it")
    domain: str
    begin: datetime
    end: datetime
    org_email: str
    policy: str = Field(description="the policy the receiver applied, as published then")
    carrier_dmarc: str = Field(description="the report message's own DMARC result here (pass: its domain sent it)")
    received_at: datetime
    messages: int
    rows: list[DmarcRowOut] | None = Field(None, description="the records (only when one report is asked for)")


class DmarcDayOut(BaseModel):
    day: date
    passed: int = Field(description="messages that passed DMARC (SPF or DKIM passed, aligned)")
    failed: int


class DmarcSourceOut(BaseModel):
    source_ip: str
    name: str | None = Field(description="its PTR name, when DNS answered in time")
    messages: int
    spf_pass: int
    dkim_pass: int
    dmarc_pass: int
    failing: int = Field(description="messages from it that failed DMARC")
    dispositions: dict[str, int] = Field(description="what receivers did with its messages")
    header_from: list[str]
    reporters: list[str]


class ReporterOut(BaseModel):
    org_name: str
    reports: int
    count: int = Field(description="messages (DMARC) or sessions (TLS) it reported")


class DmarcReporterRowOut(BaseModel):
    org_name: str = Field(description="the receiver")
    emails: list[str] = Field(description="the addresses its reports came from")
    reports: int
    begin: datetime = Field(description="the earliest start of its reports' periods")
    end: datetime = Field(description="the latest end")
    messages: int
    spf_pass: int = Field(description="messages whose SPF passed, aligned (the receiver's DMARC evaluation)")
    dkim_pass: int = Field(description="messages whose DKIM passed, aligned")
    dmarc_pass: int
    failing: int = Field(description="messages that failed DMARC")
    failing_share: float = Field(description="percent of its messages that failed DMARC")


class DmarcSummaryOut(BaseModel):
    domain: str | None = Field(description="null: every domain")
    days: list[DmarcDayOut]
    messages: int
    spf_pass: int
    dkim_pass: int
    dmarc_pass: int
    sources: list[DmarcSourceOut] = Field(description="the failing first, then by messages")
    reporters: list[ReporterOut]
    reports: list[DmarcReportOut] = Field(description="newest first, without their rows")
    by_reporter: dict[str, list[DmarcReporterRowOut]] = Field(
        description="per domain, each receiver's reports summed: the largest failing share first"
    )


class TlsPolicyOut(BaseModel):
    domain: str
    policy_type: str = Field(description="sts, tlsa or no-policy-found")
    successful: int
    failed: int
    mx_hosts: list[str]


class TlsFailureOut(BaseModel):
    domain: str
    result_type: str = Field(description="RFC 8460 §4.3, e.g. certificate-expired, starttls-not-supported")
    sessions: int
    receiving_mx: str
    receiving_ip: str
    sending_ip: str
    reason: str


class TlsReportOut(BaseModel):
    id: str
    org_name: str
    report_id: str
    begin: datetime
    end: datetime
    contact: str
    domains: list[str]
    carrier_dmarc: str
    received_at: datetime
    policies: list[TlsPolicyOut]
    failures: list[TlsFailureOut]


class TlsDayOut(BaseModel):
    day: date
    successful: int
    failed: int


class TlsFailureGroupOut(BaseModel):
    domain: str
    result_type: str
    sessions: int
    receiving_mx: list[str]
    sending_ips: list[str]
    reasons: list[str]
    reporters: list[str]


class TlsReporterRowOut(BaseModel):
    org_name: str = Field(description="the sending organisation")
    contacts: list[str] = Field(description="its contact-info")
    reports: int
    begin: datetime
    end: datetime
    successful: int = Field(description="sessions to the domain's MX that were fine")
    failed: int
    failing_share: float = Field(description="percent of its sessions that failed")


class TlsSummaryOut(BaseModel):
    domain: str | None
    days: list[TlsDayOut]
    successful: int
    failed: int
    failures: list[TlsFailureGroupOut] = Field(description="by receiving domain and result type, most first")
    reporters: list[ReporterOut]
    reports: list[TlsReportOut] = Field(description="newest first")
    by_reporter: dict[str, list[TlsReporterRowOut]] = Field(
        description="per policy domain, each organisation's reports summed: the largest failing share first"
    )
