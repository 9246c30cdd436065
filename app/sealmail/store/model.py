"""What a mailbox is made of, as its parts hand it out: names, flags and the typed results.

Shared by every part of ``Mailbox`` (``folders``, ``messages``, ``sections``...) and by protocol
code, which gets these frozen records and never a database row.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

# Folder names live below the store (the Sieve rules normalise them too); the store's modules import them here.
from sealmail.foldernames import DELIMITER as DELIMITER  # noqa: PLC0414 - re-exported
from sealmail.foldernames import INBOX as INBOX  # noqa: PLC0414 - re-exported
from sealmail.foldernames import MAX_FOLDER_NAME as MAX_FOLDER_NAME  # noqa: PLC0414 - re-exported
from sealmail.foldernames import InvalidFolderName as InvalidFolderName  # noqa: PLC0414 - re-exported
from sealmail.foldernames import normalize_folder_name as normalize_folder_name  # noqa: PLC0414 - re-exported
from sealmail.store.wireform import ascii_size, crlf_size, split_header
from sealmail.timecodec import parse_time

SYSTEM_FLAGS: dict[str, int] = {"\\Seen": 1, "\\Answered": 2, "\\Flagged": 4, "\\Deleted": 8, "\\Draft": 16}
_FLAG_BY_LOWER = {name.lower(): name for name in SYSTEM_FLAGS}
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
DEFAULT_FOLDERS: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)
MAX_KEYWORDS = 200

StoreMode = Literal["add", "remove", "replace"]


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    noselect: bool
    object_id: str = ""  # RFC 8474 MAILBOXID


@dataclass(frozen=True, slots=True)
class FolderStatus:
    messages: int
    unseen: int
    recent: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    object_id: str = ""  # RFC 8474 MAILBOXID


@dataclass(frozen=True, slots=True)
class MessageInfo:
    uid: int
    modseq: int
    flags: frozenset[str]  # system flags in canonical case, then keywords as first spelled
    internal_date: datetime
    size: int
    body_id: int
    recent: bool


class MaildropEntry(NamedTuple):
    """One message as POP3 lists it (RFC 1939 §5): CRLF size, and whether its header needs downgrading.

    A named tuple: a listing makes one per message, and tuples are several times cheaper to build.
    """

    uid: int
    body_id: int
    crlf_size: int  # octets with every line ending as CRLF and a final CRLF: what POP3 sends
    ascii_size: int  # the same with the header downgraded to ASCII (RFC 6858), for clients without UTF-8
    utf8_header: bool  # 8-bit octets in the header block (RFC 6856 §2: UTF-8 mode matters)


@dataclass(frozen=True, slots=True)
class Maildrop:
    """A folder listed for POP3 in one read: its UIDVALIDITY and its messages in UID order."""

    uidvalidity: int
    messages: tuple[MaildropEntry, ...]


@dataclass(frozen=True, slots=True)
class AppendResult:
    uidvalidity: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UIDPLUS (RFC 4315): the destination's UIDVALIDITY and (source UID, new UID) pairs, in order."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class StoreResult:
    changed: tuple[MessageInfo, ...]  # messages whose flags changed (new MODSEQ)
    unchanged: tuple[MessageInfo, ...]  # addressed but already as asked
    conflicts: tuple[int, ...]  # UNCHANGEDSINCE failures (RFC 7162 §3.1.3): not modified


@dataclass(frozen=True, slots=True)
class LearnJob:
    """A message waiting to be taught to the spam filter (``store.learnjobs``): its body and the class."""

    body_id: int
    kind: str  # "spam" or "ham" (``LEARN_KINDS``)
    attempts: int  # failed tries so far


LEARN_KINDS = ("spam", "ham")


@dataclass(frozen=True, slots=True)
class Placement:
    """One copy of a delivered message: the folder it goes to, with these flags (RFC 5232 §5);
    ``create``: the folder is made when it is missing (RFC 5490 §3.2), else the copy falls back."""

    folder: str
    flags: tuple[str, ...] = ()
    create: bool = False


@dataclass(frozen=True, slots=True)
class Filing:
    """Where the drain files one sealed message: every copy a Sieve script asked for (one body,
    stored once, RFC 5228 §2.10.3), and ``fallback``, the folder a copy whose folder is missing
    goes to instead (RFC 5228 §4.1: the failed ``fileinto`` becomes a keep; Junk for spam)."""

    copies: tuple[Placement, ...]
    fallback: str = INBOX


@dataclass(frozen=True, slots=True)
class DrainResult:
    drained: int
    failed: tuple[int, ...]  # spool sequence numbers that did not open (kept in the spool)


def new_object_id(kind: str) -> str:
    """A fresh RFC 8474 object id: a letter for its kind ("F" folder, "M" message), then 96 random bits."""
    return kind + secrets.token_hex(12)


def line_sizes(raw: bytes) -> tuple[int, int, int]:
    """(crlf_size, utf8_header, ascii_size) as the messages table keeps them (see ``store.wireform``)."""
    crlf = crlf_size(raw)  # one pass over the whole message; the rest looks at the header only
    eight_bit = not split_header(raw).isascii()
    return crlf, int(eight_bit), ascii_size(raw, crlf) if eight_bit else crlf


def parents(name: str) -> list[str]:
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def flags_to_columns(flags: Iterable[str]) -> tuple[int, list[str]]:
    bits, keywords = 0, list[str]()
    for flag in flags:
        canonical = _FLAG_BY_LOWER.get(flag.lower())
        if canonical is not None:
            bits |= SYSTEM_FLAGS[canonical]
        elif flag.lower() == "\\recent" or flag.startswith("\\"):
            continue  # \Recent is not settable; unknown system flags are ignored (RFC 9051 §6.4.6)
        elif flag.lower() not in {k.lower() for k in keywords}:
            keywords.append(flag)
    return bits, keywords


FOLDER_COLUMNS = "id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed, noselect, object_id"
# The row types SQLite hands back for those columns (sqlcipher3 is untyped; no conversion is paid per row).
FolderRow = tuple[int, str, str | None, int, int, int, int, int, str]
INFO_COLUMNS = "uid, modseq, flags, keywords, internal_date, size, body_id, recent"
InfoRow = tuple[int, int, int, str | None, str, int, int, int]


def folder_from_row(row: FolderRow) -> Folder:
    """A ``Folder`` from a row of ``FOLDER_COLUMNS``."""
    return Folder(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), bool(row[7]), row[8])


def info_from_row(row: InfoRow) -> MessageInfo:
    """A ``MessageInfo`` from a row of ``INFO_COLUMNS``."""
    uid, modseq, bits, keywords, internal_date, size, body_id, recent = row
    flags = [name for name, bit in SYSTEM_FLAGS.items() if bits & bit]
    if keywords:
        flags += json.loads(keywords)
    return MessageInfo(uid, modseq, frozenset(flags), parse_time(internal_date), size, body_id, bool(recent))
