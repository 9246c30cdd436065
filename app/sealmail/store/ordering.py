"""SORT and THREAD over one folder (RFC 5256, RFC 5957): the matching messages in order, and what
the threading algorithms need of each, read from the keys kept at append time (``store.sortkeys``).

SORT is one SQL query: the search program as SEARCH compiles it, ordered by the criteria's columns
and then by UID (RFC 5256 §3: messages that compare equal keep their mailbox order, and UIDs
ascend with sequence numbers). THREAD gets one row per matching message and threads them in the
protocol layer (``imap.threads``); the store stays free of protocol policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sealmail.store import sortkeys
from sealmail.store.mailboxdb import MailboxDB
from sealmail.store.rows import MessageRows
from sealmail.store.search import Compiler, SearchKey
from sealmail.store.textindex import TextIndex

SortField = Literal["arrival", "cc", "date", "from", "size", "subject", "to", "displayfrom", "displayto"]
SORT_FIELDS: frozenset[str] = frozenset(SortField.__args__)  # type: ignore[attr-defined]

# RFC 5256 §2.2: the sent date is the Date header in UTC, else the INTERNALDATE (both kept in one text form).
SENT_DATE = "coalesce(k.sent_date, m.internal_date)"
_COLUMNS: dict[str, str] = {
    "arrival": "m.internal_date",
    "cc": "k.cc",
    "date": SENT_DATE,
    "from": "k.from_",
    "size": "m.size",
    "subject": "k.subject",
    "to": "k.to_",
    "displayfrom": "k.display_from",
    "displayto": "k.display_to",
}


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One SORT key (RFC 5256 §3), ``reverse`` for a preceding REVERSE."""

    field: SortField
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message as THREAD sees it (RFC 5256 §4): its sent date (stored text form, which orders
    as time does), base subject in collation form, whether that subject said reply/forward, its
    Message-ID and its parents' IDs, oldest first."""

    uid: int
    date: str
    subject: str
    reply: bool
    message_id: str | None
    references: tuple[str, ...]


class Ordering:
    def __init__(self, db: MailboxDB, rows: MessageRows, text: TextIndex) -> None:
        self._db = db
        self._rows = rows
        self._text = text

    def sort(self, folder: str, key: SearchKey, criteria: tuple[SortCriterion, ...]) -> list[int]:
        """UIDs of the messages matching ``key``, in the order of ``criteria`` (ties in UID order)."""
        order = [f"{_COLUMNS[c.field]}{' DESC' if c.reverse else ''}" for c in criteria]
        rows = self._select(folder, key, "m.uid", ", ".join([*order, "m.uid"]))
        return [r[0] for r in rows]

    def thread_messages(self, folder: str, key: SearchKey) -> list[ThreadMessage]:
        """The messages matching ``key`` in UID order, as THREAD needs them."""
        rows = self._select(folder, key, f"m.uid, {SENT_DATE}, k.subject, k.reply, k.message_id, k.refs", "m.uid")
        return [
            ThreadMessage(uid, date, subject, bool(reply), message_id, tuple(refs.split()) if refs else ())
            for uid, date, subject, reply, message_id, refs in rows
        ]

    def _select(self, folder: str, key: SearchKey, columns: str, order: str) -> list[Any]:
        self._text.before_search(key)
        compiler = Compiler()
        condition = compiler.compile(key)
        sortkeys.fill_missing(self._db)
        # Only the tables the query names: each one joined costs its pages, decrypted, for every message.
        joins = ""
        if "b." in condition:
            joins += " JOIN bodies b ON b.id = m.body_id"
        if "k." in columns or "k." in order:
            joins += " JOIN body_sortkeys k ON k.id = m.body_id"
        with self._db.read() as db:
            folder_id = self._rows.folder_row(folder).id
            found: list[Any] = db.execute(
                f"SELECT {columns} FROM messages m{joins} WHERE m.folder_id = ? AND ({condition}) ORDER BY {order}",
                [folder_id, *compiler.params],
            ).fetchall()
        return found
