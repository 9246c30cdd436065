"""Real mail clients from Debian against the server: mbsync (isync) and offlineimap."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import ASCII_ADDRESS
from mailgen import message
from support import require_tool

pytestmark = pytest.mark.slow


def _need(name: str) -> str:
    return require_tool(name)  # one rule for every suite: a failure under CI=true, else a skip


def _maildir_files(root: Path) -> dict[str, list[str]]:
    """folder -> sorted flag suffixes of its messages (mbsync names: <id>,U=<uid>:2,<flags>)."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.parent.name in ("cur", "new"):
            folder = str(path.parent.parent.relative_to(root))
            found.setdefault(folder, []).append(path.name.rpartition(":2,")[2])
    return {k: sorted(v) for k, v in found.items()}


def _server_state(imap, folders: tuple[str, ...]) -> dict[str, object]:
    state: dict[str, object] = {}
    with imap.client(ASCII_ADDRESS) as client:
        for folder in folders:
            typ, data = client.status(folder, "(MESSAGES UIDNEXT HIGHESTMODSEQ)")
            assert typ == "OK", data
            state[folder] = data[0]
    return state


def test_mbsync_syncs_both_ways_and_a_second_sync_is_a_no_op(imap, tmp_path, caplog) -> None:
    """mbsync (isync 1.4) both ways; it turns on COMPRESS=DEFLATE (RFC 4978) when offered, so every sync
    here runs compressed."""
    caplog.set_level(logging.INFO, logger="sealmail.imap")
    mbsync = _need("mbsync")
    acct = imap.account(ASCII_ADDRESS)
    with imap.client(ASCII_ADDRESS) as client:
        for i in range(1, 4):
            assert client.append("INBOX", "(\\Seen)" if i == 1 else None, None, message(i))[0] == "OK"
        assert client.append("Sent", "(\\Seen)", None, message(10, subject="Sent one"))[0] == "OK"
    local = tmp_path / "mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount sealmail
Host localhost
Port {imap.port}
User {acct.address}
Pass {acct.password}
SSLType IMAPS
CertificateFile {imap.ca_cert}

IMAPStore remote
Account sealmail

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
"""
    )

    def sync() -> str:
        result = subprocess.run(
            [mbsync, "-c", str(config), "-a", "-V"], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    sync()
    files = _maildir_files(local)
    assert files["INBOX"] == ["", "", "S"]
    assert files["Sent"] == ["S"]
    assert {"Drafts", "Junk", "Trash", "Archive"} <= set(os.listdir(local))

    # Local changes: a new message, a flag, a deletion, a move between folders.
    inbox = local / "INBOX"
    (inbox / "new" / "1700000000.local1.host").write_bytes(message(20, subject="Written offline"))
    unread = sorted(p for p in (inbox / "cur").iterdir() if p.name.endswith(":2,")) + sorted(
        (inbox / "new").glob("*U=*")
    )
    first, second = unread[0], unread[1]
    deleted_subject = re.search(rb"Subject: (.*?)\r?\n", second.read_bytes()).group(1).decode()
    first.rename(inbox / "cur" / (first.name.rpartition(":2,")[0] + ":2,F"))
    second.unlink()
    sent_file = next((local / "Sent" / "cur").iterdir())
    sent_file.rename(local / "Archive" / "cur" / re.sub(r",U=\d+", "", sent_file.name))
    # Server-side changes: new mail through the MX, a flag from another client, a move.
    imap.deliver(message(30, subject="Arrived later"), ASCII_ADDRESS)
    with imap.client(ASCII_ADDRESS) as client:
        client.select("INBOX")
        assert client.uid("STORE", "1", "+FLAGS", "(\\Answered)")[0] == "OK"
        client.select("Drafts")
        client.append("Drafts", "(\\Draft)", None, message(40, subject="Draft"))
    sync()

    with imap.client(ASCII_ADDRESS) as client:
        client.select("INBOX")
        _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER])")
        subjects = sorted(
            re.search(rb"Subject: (.*)\r\n", item[1]).group(1).decode() for item in data if isinstance(item, tuple)
        )
        expected = {"Arrived later", "Message number 1", "Message number 2", "Message number 3", "Written offline"}
        assert subjects == sorted(expected - {deleted_subject})
        flags = " ".join(item[0].decode() for item in data if isinstance(item, tuple))
        assert "\\Flagged" in flags
        assert client.select("Archive")[1] == [b"1"]  # moved locally, so moved on the server
        assert client.select("Sent")[1] == [b"0"]
    files = _maildir_files(local)
    assert len(files["INBOX"]) == 4
    assert "RS" in files["INBOX"]  # \Answered from the server reached the local copy
    assert files["Drafts"] == ["D"]

    # A second sync changes nothing on either side.
    before_local = _maildir_files(local)
    folders = ("INBOX", "Archive", "Sent", "Drafts", "Trash", "Junk")
    before_server = _server_state(imap, folders)
    out = sync()
    assert _maildir_files(local) == before_local
    assert _server_state(imap, folders) == before_server
    assert "Error" not in out
    assert any(r.getMessage() == "compression on" for r in caplog.records)


def test_offlineimap_retrieves_over_tls(imap, tmp_path) -> None:
    offlineimap = _need("offlineimap")
    acct = imap.account(ASCII_ADDRESS)
    with imap.client(ASCII_ADDRESS) as client:
        for i in range(1, 4):
            client.append("INBOX", None, None, message(i))
    local = tmp_path / "Mail"
    config = tmp_path / "offlineimaprc"
    config.write_text(
        f"""[general]
accounts = sealmail
metadata = {tmp_path / "meta"}

[Account sealmail]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {imap.port}
remoteuser = {acct.address}
remotepass = {acct.password}
ssl = yes
sslcacertfile = {imap.ca_cert}
folderfilter = lambda name: name in ("INBOX", "Sent")
"""
    )
    result = subprocess.run(
        [offlineimap, "-c", str(config), "-o", "-u", "basic"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    inbox = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(inbox) == 3
    assert b"Message number" in inbox[0].read_bytes()
