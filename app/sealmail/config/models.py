"""Records kept in the config store (never mail content, never passwords or unwrapped keys)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sealmail.addresses import AliasKind

DisabledReply = Literal["drop", "defer", "reject"]
LogKind = Literal["delivery", "error"]


def now() -> datetime:
    """UTC, truncated to milliseconds: the precision both backends (BSON dates) can keep."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id() -> str:
    """24 hex characters of randomness; ids never encode names or addresses."""
    return secrets.token_hex(12)


@dataclass(slots=True)
class Domain:
    name: str  # ASCII (A-label) form: the unique key
    unicode_name: str
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)


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
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass(slots=True)
class AliasCredential:
    alias_id: str
    password_hash: str  # Argon2id verifier (PHC string)
    updated_at: datetime = field(default_factory=now)


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


@dataclass(slots=True)
class LogEntry:
    """One event of the delivery or error log: metadata only, never content."""

    kind: LogKind
    component: str
    status: str  # e.g. stored, forwarded, deferred, bounced, rejected, failed
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
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = 50
    cursor: str | None = None  # from the previous page's next_cursor


@dataclass(slots=True)
class LogPage:
    entries: list[LogEntry]
    next_cursor: str | None
