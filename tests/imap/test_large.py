"""A mailbox of 10,000 messages: SELECT, FETCH 1:* (FLAGS), SEARCH and a full mbsync stay correct."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from sealmail.services import credentials
from sealmail.store.mailstore import MailStore

from .conftest import ASCII_ADDRESS
from mailgen import message
from support import require_tool

pytestmark = pytest.mark.slow
COUNT = 10_000


def fill(imap, count: int = COUNT) -> None:
    """Put ``count`` messages into INBOX straight through the store (what years of mail look like)."""
    acct = imap.account(ASCII_ADDRESS)
    unlocked = credentials.unlock(imap.config, imap.settings, acct.address, acct.password)
    box = MailStore(imap.settings.data_dir).open_sync(acct.mailbox_id, unlocked.secrets.mailbox_key)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    try:
        batch = []
        for i in range(1, count + 1):
            flags = ("\\Seen",) if i % 3 else ()
            subject = f"Quarterly report {i}" if i % 1000 == 0 else None
            batch.append((message(i, subject=subject), flags, start + timedelta(hours=i)))
            if len(batch) == 1000:
                box.append_many("INBOX", batch)
                batch = []
        if batch:
            box.append_many("INBOX", batch)
    finally:
        box.close()


def test_ten_thousand_messages(imap, tmp_path) -> None:

    fill(imap)
    with imap.client(ASCII_ADDRESS) as client:
        started = time.monotonic()
        typ, data = client.select("INBOX")
        assert (typ, data) == ("OK", [str(COUNT).encode()])
        assert time.monotonic() - started < 2

        started = time.monotonic()
        typ, data = client.fetch("1:*", "(FLAGS)")
        assert typ == "OK"
        assert len(data) == COUNT
        seqs = [int(line.split(b" ", 1)[0]) for line in data]
        assert seqs == list(range(1, COUNT + 1))
        unseen = [line for line in data if b"\\Seen" not in line]
        assert len(unseen) == COUNT // 3
        assert time.monotonic() - started < 5

        typ, data = client.uid("FETCH", "9990:*", "(UID RFC822.SIZE INTERNALDATE)")
        assert [int(re.search(rb"UID (\d+)", line).group(1)) for line in data] == list(range(9990, COUNT + 1))

        assert client.search(None, "SUBJECT", '"Quarterly report"') == (
            "OK",
            [" ".join(str(n) for n in range(1000, COUNT + 1, 1000)).encode()],
        )
        typ, data = client.search(None, "UNSEEN")
        assert len(data[0].split()) == COUNT // 3
        typ, data = client.search(None, "FROM", "sender9999")
        assert data == [b"9999"]
        typ, data = client.search(None, "SINCE", "1-Feb-2021", "BEFORE", "2-Feb-2021")
        assert len(data[0].split()) == 24

        client.store("1:100", "+FLAGS", "(\\Deleted)")
        client.expunge()
        typ, data = client.select("INBOX")
        assert data == [str(COUNT - 100).encode()]

    mbsync = require_tool("mbsync")
    acct = imap.account(ASCII_ADDRESS)
    local = tmp_path / "mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount a\nHost localhost\nPort {imap.port}\nUser {acct.address}\nPass {acct.password}\n"
        f"SSLType IMAPS\nCertificateFile {imap.ca_cert}\n\nIMAPStore remote\nAccount a\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\n\n"
        "Channel c\nFar :remote:INBOX\nNear :local:INBOX\nSync All\nSyncState *\n"
    )
    started = time.monotonic()
    result = subprocess.run([mbsync, "-c", str(config), "-a"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    took = time.monotonic() - started
    files = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(files) == COUNT - 100
    assert sum(1 for f in files if f.name.endswith("S")) == len(files) - (COUNT // 3 - 33)
    assert took < 120
