"""What SORT and THREAD compare, computed once per message body at append time (``body_sortkeys``).

Each text key is kept in its ``i;unicode-casemap`` form (RFC 5051, ``mime.collation``), so SQLite's
binary comparison orders it and ``ORDER BY`` over an indexed folder answers SORT without opening a
single message. Messages stored before the table existed get their row the first time a SORT or
THREAD needs it (``fill_missing``), from the header block kept beside every body.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealmail import mime
from sealmail.mime.addrlist import MISSING_DOMAIN, MISSING_MAILBOX
from sealmail.mime.basesubject import base_subject
from sealmail.mime.collation import casemap
from sealmail.mime.headers import decode_words
from sealmail.mime.msgids import thread_ids
from sealmail.store.mailboxdb import MailboxDB


@dataclass(frozen=True, slots=True)
class SortKeys:
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
    return SortKeys(
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
        "INSERT OR REPLACE INTO body_sortkeys (id, subject, reply, from_, to_, cc, display_from, display_to, "
        "message_id, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            body_id,
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


def fill_missing(db: MailboxDB, folder_id: int) -> int:
    """Rows for the folder's bodies stored before ``body_sortkeys`` existed; returns how many were made."""
    with db.read() as conn:
        rows: list[tuple[int, bytes]] = conn.execute(
            "SELECT h.id, h.header FROM body_headers h WHERE h.id IN (SELECT m.body_id FROM messages m "
            "LEFT JOIN body_sortkeys k ON k.id = m.body_id WHERE m.folder_id = ? AND k.id IS NULL)",
            (folder_id,),
        ).fetchall()
    if not rows:
        return 0
    keys = [(body_id, sort_keys(mime.parse(bytes(header)))) for body_id, header in rows]
    with db.write():
        for body_id, k in keys:
            save(db, body_id, k)
    return len(keys)
