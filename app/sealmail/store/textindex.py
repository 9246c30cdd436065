"""SEARCH's text index (the FTS5 table ``body_text``), filled off the append path.

An FTS5 insert in a transaction of its own writes a new index segment, and every few commits FTS5
merges segments: with one message per APPEND or per drained spool record that was most of the
commit's cost and its periodic stalls. So a single append stores no search text at all: the meta
value ``text_indexed_through`` says up to which body id every body's text is indexed, and
``TextIndex.index_pending`` indexes the bodies after it, many per transaction, extracting their
text from the stored message outside the writer lock. The mailbox's background upkeep does that
between requests (``store.mailstore``), and ``before_search`` does it before any search that reads
the text, so SEARCH always sees every message, whichever process appended it. Bodies get ids in
commit order (one writer at a time), so "after the mark" is exactly "not indexed yet" — apart from
those ``append_many`` indexed in its own transaction, which are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

from sealmail.store.indexing import SearchText, search_text
from sealmail.store.mailboxdb import MailboxDB, as_int
from sealmail.store.search import SearchKey, Text, any_key

BATCH = 128  # bodies per indexing transaction: bounds how long a request waits behind one
MARK = "text_indexed_through"
_INSERT = "INSERT INTO body_text (rowid, subject, from_, to_, cc, bcc, headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INDEXED = "SELECT 1 FROM body_text WHERE rowid = ?"


def write_now(db: MailboxDB, body_id: int, text: SearchText) -> None:
    """Index a new body's text inside the caller's transaction (callers that write many at once)."""
    db.conn.execute(_INSERT, (body_id, *text.columns()))


def caught_up(db: MailboxDB) -> bool:
    """Is every body's text indexed (inside the caller's transaction)?"""
    return as_int(db.meta(MARK, 0)) >= db.scalar_int("SELECT coalesce(max(id), 0) FROM bodies")


def mark_all_indexed(db: MailboxDB) -> None:
    """Every body's text is in the index now (inside the caller's transaction, which made it so)."""
    db.set_meta(MARK, db.scalar_int("SELECT coalesce(max(id), 0) FROM bodies"))


def forget(db: MailboxDB, body_id: int) -> None:
    """The body is gone: so is its text (inside the caller's transaction)."""
    db.conn.execute("DELETE FROM body_text WHERE rowid = ?", (body_id,))


class TextIndex:
    """Indexes what waits; ``raw`` gives a stored message back by body id (b"" when it is gone)."""

    def __init__(self, db: MailboxDB, raw: Callable[[int], bytes]) -> None:
        self._db = db
        self._raw = raw

    def index_pending(self, limit: int = BATCH) -> int:
        """Index up to ``limit`` bodies after the mark in one transaction; returns how many were
        looked at (fewer than ``limit``: none is left)."""
        db = self._db
        with db.read():
            mark = as_int(db.meta(MARK, 0))
            ids = [
                as_int(r[0]) for r in db.rows("SELECT id FROM bodies WHERE id > ? ORDER BY id LIMIT ?", (mark, limit))
            ]
            todo = [i for i in ids if not db.exists(_INDEXED, (i,))]
        texts = [(i, search_text(self._raw(i))) for i in todo]  # the CPU work, outside the writer lock
        if not ids:
            return 0
        with db.write():
            now = as_int(db.meta(MARK, 0))  # another process may have indexed some meanwhile
            for body_id, text in texts:
                gone = not db.exists("SELECT 1 FROM bodies WHERE id = ?", (body_id,))
                if body_id > now and not gone and not db.exists(_INDEXED, (body_id,)):
                    write_now(db, body_id, text)
            db.set_meta(MARK, max(now, ids[-1]))
        return len(ids)

    def catch_up(self, batch: int = BATCH) -> int:
        """Index everything that waits, a batch per transaction (other writers get the lock in between)."""
        done = 0
        while True:
            seen = self.index_pending(batch)
            done += seen
            if seen < batch:
                return done

    def before_search(self, key: SearchKey) -> None:
        if reads_text(key):
            self.catch_up()


def reads_text(key: SearchKey) -> bool:
    """Does this search program read ``body_text`` (so every body must be indexed first)?"""
    return any_key(key, lambda k: isinstance(k, Text) and bool(k.value))
