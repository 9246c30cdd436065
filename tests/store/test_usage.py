"""The octets a mailbox uses (quota, RFC 9208 STORAGE) are kept by triggers, so the quota check at
every APPEND reads one row: the kept total must equal the sum it replaces after every kind of change."""

from __future__ import annotations

import os

from sealmail.store.dav import NewItem
from sealmail.store.db import open_encrypted
from sealmail.store.mailbox import Mailbox
from sealmail.store.schema import MIGRATIONS

from mailgen import message

_SUM = "SELECT (SELECT coalesce(sum(size), 0) FROM messages) + (SELECT coalesce(sum(size), 0) FROM dav_items)"


def _item(href: str, body: str) -> NewItem:
    return NewItem(href, href, '"1"', "VCALENDAR", "VEVENT", 100, 200, body)


def _exact(box: Mailbox) -> int:
    used = box.usage()
    assert used == box.db.execute(_SUM).fetchone()[0]
    return used


def test_the_kept_total_follows_every_change(mailbox: Mailbox) -> None:
    assert _exact(mailbox) == 0
    first = mailbox.append("INBOX", message(1))
    mailbox.append_many("INBOX", [(message(i), (), None) for i in (2, 3)])
    mailbox.create_folder("Copies")
    mailbox.copy("INBOX", [first.uid], "Copies")
    mailbox.move("INBOX", [first.uid + 1], "Copies")
    assert _exact(mailbox) == len(message(1)) * 2 + len(message(2)) + len(message(3))
    mailbox.store_flags("INBOX", [first.uid], "add", ["\\Deleted"])
    mailbox.expunge("INBOX")
    mailbox.delete_folder("Copies")
    assert _exact(mailbox) == len(message(3))

    mailbox.dav_create_collection("cal", "VCALENDAR")
    mailbox.dav_put_item("cal", _item("a.ics", "x" * 100))
    mailbox.dav_put_item("cal", _item("a.ics", "x" * 40))  # replaced: smaller
    mailbox.dav_put_item("cal", _item("b.ics", "y" * 10))
    mailbox.dav_move_item("cal", "b.ics", "cal", "c.ics")
    assert _exact(mailbox) == len(message(3)) + 50
    mailbox.dav_delete_item("cal", "c.ics")
    mailbox.dav_delete_collection("cal")  # its items go by ON DELETE CASCADE
    assert _exact(mailbox) == len(message(3))


def test_an_older_mailbox_gets_its_total_counted_once(tmp_path) -> None:
    key, path = os.urandom(32), tmp_path / "box.sqlite"
    box = Mailbox("u" * 24, path, key)
    box.append("INBOX", message(1))
    box.close()
    db = open_encrypted(path, key)  # as the version before the triggers left it
    for trigger in ("used_message_added", "used_message_removed", "used_dav_added", "used_dav_removed"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DROP TRIGGER used_dav_resized")
    db.execute("DELETE FROM meta WHERE key IN ('used_octets', 'text_indexed_through')")
    db.execute(f"PRAGMA user_version = {next(i for i, m in enumerate(MIGRATIONS) if 'used_octets' in m)}")
    db.close()
    box = Mailbox("u" * 24, path, key)
    try:
        assert _exact(box) == len(message(1))
        box.append("INBOX", message(2))
        assert _exact(box) == len(message(1)) + len(message(2))
    finally:
        box.close()
