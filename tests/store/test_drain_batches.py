"""The drain appends spool records that wait together in one transaction, still exactly once."""

from __future__ import annotations

from sealmail.crypto import keys
from sealmail.store.mailstore import MailStore

from mailgen import message


def test_waiting_spool_records_drain_together(tmp_path, monkeypatch) -> None:
    """Records that wait together share one transaction (and fsync), in order, each exactly once."""
    secrets, public = keys.new_secrets()
    store = MailStore(tmp_path)
    store.create("d" * 24, secrets.mailbox_key)
    for i in range(5):
        store.deliver("d" * 24, public, message(i))
    box = store.open_sync("d" * 24, secrets.mailbox_key)
    try:
        monkeypatch.setattr("sealmail.store.messages.DRAIN_BATCH", 2)
        before = box.file.commits
        assert box.drain(store.spool("d" * 24), secrets.private_key).drained == 5
        assert box.file.commits - before == 3
        assert [box.header(i.body_id).split(b"\r\n")[0] for i in box.messages("INBOX")] == [
            f"From: Sender {i} <sender{i}@example.org>".encode() for i in range(5)
        ]
        assert box.drain(store.spool("d" * 24), secrets.private_key).drained == 0
    finally:
        box.close()
        store.close_spools()
