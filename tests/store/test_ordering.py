"""SORT and THREAD in the store (RFC 5256): keys kept at append time, the migration that adds them,
and the keys made on first use for mail stored before it; the records cross the store channel."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sealmail.store import rpc
from sealmail.store.mailbox import Mailbox
from sealmail.store.ordering import SortCriterion, ThreadMessage
from sealmail.store.schema import MIGRATIONS
from sealmail.store.search import All, Text

from mailgen import message


def _fill(box: Mailbox) -> None:
    for n, subject in enumerate(("Re: banana", "=?utf-8?q?=C3=A9clair?=", "Apple", "zucchini"), 1):
        box.append("INBOX", message(n, subject=subject), (), datetime(2026, 1, 10 - n, tzinfo=UTC))


def test_sort_by_keys_kept_at_append_time(mailbox: Mailbox) -> None:
    """RFC 5256 §3: subjects by base subject in i;unicode-casemap order; ARRIVAL by INTERNALDATE."""
    _fill(mailbox)
    assert mailbox.sort("INBOX", All(), (SortCriterion("subject"),)) == [3, 1, 2, 4]
    assert mailbox.sort("INBOX", All(), (SortCriterion("arrival"),)) == [4, 3, 2, 1]
    assert mailbox.sort("INBOX", Text("subject", "an"), (SortCriterion("subject", reverse=True),)) == [1]
    rows = mailbox.thread_messages("INBOX", All())
    assert [(r.uid, r.subject, r.reply, r.message_id) for r in rows][:2] == [
        (1, "BANANA", True, "m1@example.org"),
        (2, "E\u0301CLAIR", False, "m2@example.org"),
    ]


def test_mail_stored_before_the_sort_keys_gets_them_on_first_use(tmp_path) -> None:
    """The migration adds the table to an older mailbox file; its messages are keyed when first sorted."""
    key = os.urandom(32)
    path = tmp_path / "old.sqlite"
    box = Mailbox("e" * 24, path, key)
    _fill(box)
    # As the version before this migration left the file: no table, an older schema version.
    box.db.execute("DROP TABLE body_sortkeys")
    box.db.execute("DELETE FROM meta WHERE key = 'sortkeys_complete'")
    box.db.execute(f"PRAGMA user_version = {next(i for i, m in enumerate(MIGRATIONS) if 'body_sortkeys' in m)}")
    box.close()
    box = Mailbox("e" * 24, path, key)
    try:
        assert box.db.execute("SELECT count(*) FROM body_sortkeys").fetchone()[0] == 0
        assert box.sort("INBOX", All(), (SortCriterion("subject"),)) == [3, 1, 2, 4]
        assert box.db.execute("SELECT count(*) FROM body_sortkeys").fetchone()[0] == 4
        # a body expunged everywhere takes its keys with it
        box.store_flags("INBOX", [1], "add", ["\\Deleted"])
        box.expunge("INBOX")
        assert box.db.execute("SELECT count(*) FROM body_sortkeys").fetchone()[0] == 3
    finally:
        box.close()


def test_sort_records_cross_the_store_channel() -> None:
    """The store protocol carries SORT criteria and THREAD rows as themselves."""
    value = [SortCriterion("displayfrom", reverse=True), ThreadMessage(3, "2026-01-01", "X", True, None, ("a@b",))]
    assert rpc.loads(rpc.reply_ok(1, value))["ok"] == value
