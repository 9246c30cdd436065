"""What SORT and THREAD compare, computed once per message body at append time (``body_sortkeys``).

Each text key is kept in its ``i;unicode-casemap`` form (RFC 5051, ``mime.collation``), so SQLite's
binary comparison orders it and ``ORDER BY`` over an indexed folder answers SORT without opening a
single message. Messages stored before the table existed get their row the first time a SORT or
THREAD needs it (``fill_missing``), from the header block kept beside every body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail import mime
from sealmail.mime.addrlist import MISSING_DOMAIN, MISSING_MAILBOX
from sealmail.mime.basesubject import base_subject
from sealmail.mime.collation import casemap
from sealmail.mime.headers import decode_words
from sealmail.mime.msgids import thread_ids
from sealmail.timecodec import format_time

if TYPE_CHECKING:
    from sealmail.store.mailboxdb import MailboxDB  # mailboxdb imports indexing, which imports this

_COMPLETE = "sortkeys_complete"  # meta: every body has its row (set once nothing is missing)


@dataclass(frozen=True, slots=True)
class SortKeys:
    sent_date: str | None  # RFC 5256 §2.2: the Date header in UTC (stored time form), None when unreadable
    subject: str  # RFC 5256 §2.1 base subject
    reply: bool  # the subject said it was a reply or forward (RFC 5256 §4, step 5)
    from_: str  # RFC 5256 §3: the addr-mailbox of the first From/To/Cc address
    to: str
    cc: str
    display_from: str  # RFC 5957 §3: the first address's display name, else its address
    display_to: str
    message_id: str | None  # RFC 5256 §4 step 1, without angle brackets
    references: str  # the parent IDs, oldest first, separated by spaces (IDs hold none)


def sort_keys(parsed: mime.ParsedMessage) -> SortKeys:
    env = parsed.envelope
    subject, reply = base_subject(env.subject)
    message_id, references = thread_ids(parsed)
    sent = mime.sent_date(parsed)
    return SortKeys(
        sent_date=format_time(sent) if sent else None,
        subject=casemap(subject),
        reply=reply,
        from_=casemap(_mailbox(env.from_)),
        to=casemap(_mailbox(env.to)),
        cc=casemap(_mailbox(env.cc)),
        display_from=casemap(_display(env.from_)),
        display_to=casemap(_display(env.to)),
        message_id=message_id,
        references=" ".join(references),
    )


def _mailbox(addresses: tuple[mime.Address, ...] | None) -> str:
    # The first ENVELOPE address: for a group that is its start, whose addr-mailbox is the group's name.
    if not addresses or addresses[0].mailbox in (None, MISSING_MAILBOX):
        return ""
    return addresses[0].mailbox or ""


def _display(addresses: tuple[mime.Address, ...] | None) -> str:
    if not addresses:
        return ""
    first = addresses[0]
    if first.name:
        name = decode_words(first.name).strip()
        if name:
            return name
    mailbox = _mailbox(addresses)
    if first.host and first.host != MISSING_DOMAIN and mailbox:
        return f"{mailbox}@{first.host}"
    return mailbox


def save(db: MailboxDB, body_id: int, keys: SortKeys) -> None:
    """The body's row (inside the caller's write transaction)."""
    db.conn.execute(
        "INSERT OR REPLACE INTO body_sortkeys (id, sent_date, subject, reply, from_, to_, cc, display_from, "
        "display_to, message_id, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            body_id,
            keys.sent_date,
            keys.subject,
            int(keys.reply),
            keys.from_,
            keys.to,
            keys.cc,
            keys.display_from,
            keys.display_to,
            keys.message_id,
            keys.references,
        ),
    )


def fill_missing(db: MailboxDB, batch: int = 500) -> int:
    """Rows for the bodies stored before ``body_sortkeys`` existed; returns how many were made.

    Once none is missing, a meta flag says so and later calls cost one small read: every body
    appended since has its row from the start.
    """
    if db.meta_read(_COMPLETE, 0):
        return 0
    made = 0
    while True:
        with db.read() as conn:
            rows: list[tuple[int, bytes]] = conn.execute(
                "SELECT h.id, h.header FROM body_headers h LEFT JOIN body_sortkeys k ON k.id = h.id "
                "WHERE k.id IS NULL LIMIT ?",
                (batch,),
            ).fetchall()
        keys = [(body_id, sort_keys(mime.parse(bytes(header)))) for body_id, header in rows]
        with db.write():
            for body_id, k in keys:
                save(db, body_id, k)
            if len(rows) < batch:
                db.set_meta(_COMPLETE, 1)
        made += len(keys)
        if len(rows) < batch:
            return made
