"""The expunge record behind QRESYNC's VANISHED (EARLIER) (RFC 7162 §3.2.5.1, §3.2.6): every expunged
UID with the MOD-SEQUENCE of its removal, kept in the encrypted mailbox file across reopenings."""

from __future__ import annotations

import os

import pytest

from sealmail.store import schema
from sealmail.store.mailbox import Mailbox

from mailgen import message


def _expunge(mailbox: Mailbox, uids: list[int]) -> None:
    mailbox.store_flags("INBOX", uids, "add", ["\\Deleted"])
    mailbox.expunge("INBOX", uids)


def test_expunged_uids_keep_their_modseq_across_a_reopening(tmp_path) -> None:
    """RFC 7162 §3.2: an expunge raises the folder's MOD-SEQUENCE and the UIDs keep it, exactly, for
    every later VANISHED (EARLIER) question, after the file was closed and opened again too."""
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    mailbox = Mailbox("a" * 24, path, key)
    for n in range(1, 7):
        mailbox.append("INBOX", message(n))  # UID n, MODSEQ n + 1
    _expunge(mailbox, [2, 3])  # \Deleted at 8, expunged at 9
    _expunge(mailbox, [5])  # 10, 11
    mailbox.close()

    mailbox = Mailbox("a" * 24, path, key)
    try:
        assert mailbox.folder("INBOX").highestmodseq == 11
        assert mailbox.expunged_since("INBOX", 8) == [2, 3, 5]
        assert mailbox.expunged_since("INBOX", 9) == [5]
        assert mailbox.expunged_since("INBOX", 11) == []
        mailbox.append("INBOX", message(7))
        assert [(i.uid, i.modseq) for i in mailbox.messages("INBOX", changed_since=11)] == [(7, 12)]
    finally:
        mailbox.close()


def test_vanished_lookups_use_the_modseq_index(tmp_path) -> None:
    """The lookup by MOD-SEQUENCE reads an index, not every tombstone of the folder; a mailbox made
    before the index existed gets it when opened (forward migration)."""
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        before = next(i for i, migration in enumerate(schema.MIGRATIONS) if "expunged_by_modseq" in migration)
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:before])  # the schema before this index
        Mailbox("b" * 24, path, key).close()
    mailbox = Mailbox("b" * 24, path, key)
    try:
        assert mailbox.db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
        plan = " ".join(
            str(row[-1])
            for row in mailbox.db.execute(
                "EXPLAIN QUERY PLAN SELECT uid FROM expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid", (1, 5)
            )
        )
        assert "expunged_by_modseq" in plan, plan
    finally:
        mailbox.close()
