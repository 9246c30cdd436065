"""Mail in a mailbox is on disk before anyone is told so, or before its other copy goes.

* RFC 9051 §6.3.12: APPEND's tagged ``OK`` says the message was appended. A power cut a moment
  later must not take it away, so the mailbox file's write-ahead log is fsynced before the ``OK``.
* The drain (``store.messages``): sealed mail the MX fsynced into the spool moves into the mailbox
  when its owner signs in, and the spool's records are deleted afterwards. That deletion is fsynced;
  if the mailbox's append were not, a power cut could keep the deletion and lose the append: the
  message would be gone from both. The mailbox's fsync must come before the spool's first write.

A killed process cannot show a missing fsync (the page cache survives it), so these watch the
system calls: ``sealmail serve imap`` runs under strace. Opening mailboxes with
``synchronous = NORMAL`` (commits written, never fsynced until a checkpoint) makes both fail.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.store.mailstore import MailStore
from sealmail.tls.devca import ensure_dev_certificates

from support import serve_traced

pytestmark = pytest.mark.slow

ADDRESS = "demo@example.test"
MESSAGE = b"From: <a@example.org>\r\nTo: <demo@example.test>\r\nSubject: fsync order\r\n\r\nmarker-append-4c1e\r\n"


def _traced_imap(sealmail_bin, clean_env, settings, tmp_path, client: Callable[[int], None]) -> list[str]:
    certs = ensure_dev_certificates(tmp_path / "tls")
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_IMAP_PORT": "0",
        "SEALMAIL_IMAPS_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_IMAP_PLAINTEXT_LOGIN": "true",  # loopback only: the trace reads the commands in clear
        "SEALMAIL_TLS_CERT_FILE": str(certs.cert),
        "SEALMAIL_TLS_KEY_FILE": str(certs.key),
        "SEALMAIL_ARGON2_TIME_COST": str(settings.argon2_time_cost),
        "SEALMAIL_ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
    }
    return serve_traced(
        sealmail_bin, "imap", env, settings.run_dir, tmp_path / "imap.trace",
        "fsync,fdatasync,read,recvfrom,write,sendto,writev,pwrite64", "imap", client,
    )  # fmt: skip


@pytest.fixture
def config(settings):
    store = SQLiteConfigStore(settings.config_db_path)
    yield store
    store.close()


def _account(config, settings) -> str:
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, ADDRESS)
    return credentials.set_password(config, settings, ADDRESS)


def _command(sock: socket.socket, f, line: bytes, tag: bytes) -> bytes:
    sock.sendall(line)
    while True:
        reply = f.readline()
        assert reply, "the server closed the connection"
        if reply.startswith(tag + b" "):
            return reply


def _session(port: int, password: str, *commands: tuple[bytes, bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock, sock.makefile("rb") as f:
        assert f.readline().startswith(b"* OK")
        login = b'a1 LOGIN "' + ADDRESS.encode() + b'" "' + password.encode() + b'"\r\n'
        assert _command(sock, f, login, b"a1").startswith(b"a1 OK")
        for line, tag in commands:
            assert _command(sock, f, line, tag).startswith(tag + b" OK"), line
        _command(sock, f, b"z LOGOUT\r\n", b"z")


def _wal_written(line: str) -> bool:
    return re.search(r"\b(?:write|pwrite64)\(\d+</[^>]*/mailboxes/[^>]*-wal>", line) is not None


def _mailbox_synced(line: str) -> bool:
    return re.search(r"\bf(?:data)?sync\(\d+</[^>]*/mailboxes/[^>]*>", line) is not None


def test_rfc9051_6_3_12_append_ok_follows_an_fsync_of_the_mailbox(
    sealmail_bin, clean_env, settings, config, tmp_path
) -> None:
    password = _account(config, settings)
    append = b"a2 APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n"
    lines = _traced_imap(
        sealmail_bin, clean_env, settings, tmp_path, lambda port: _session(port, password, (append, b"a2"))
    )
    arrived = next(i for i, line in enumerate(lines) if "marker-append-4c1e" in line and "socket:" in line)
    ok = next(
        (i for i in range(arrived, len(lines)) if re.search(r'\b(?:write|sendto|writev)\(.*"a2 OK', lines[i])), None
    )
    assert ok is not None, "the trace never shows APPEND's OK leaving"
    # The message's commit: the last write to the mailbox's log before the OK; an fsync must follow it.
    written = max(i for i in range(arrived, ok) if _wal_written(lines[i]))
    assert any(_mailbox_synced(line) for line in lines[written:ok]), (
        "no fsync of the mailbox between APPEND's commit and its OK:\n" + "\n".join(lines[written : ok + 1])
    )


def test_drained_mail_is_fsynced_in_the_mailbox_before_the_spool_lets_go_of_it(
    sealmail_bin, clean_env, settings, config, tmp_path
) -> None:
    password = _account(config, settings)
    alias = config.find_alias("example.test", "exact", "demo")
    credential = config.get_credential(alias.id)
    store = MailStore(settings.data_dir)
    store.deliver(credential.mailbox_id, credential.public_key, MESSAGE)  # as the MX does: sealed, fsynced
    store.close_spools()
    lines = _traced_imap(
        sealmail_bin,
        clean_env,
        settings,
        tmp_path,
        lambda port: _session(port, password, (b"a2 SELECT INBOX\r\n", b"a2")),
    )
    spool_writes = [
        i
        for i, line in enumerate(lines)
        if re.search(r"\b(?:write|pwrite64)\(\d+</[^>]*/spool/[^>]*\.sqlite(?:-wal)?>", line)
    ]
    assert spool_writes, "the drain never deleted the spool's records"
    first_delete = spool_writes[0]
    # The drained message's append: the last write to the mailbox before the spool's deletion.
    appended = max(i for i in range(first_delete) if _wal_written(lines[i]))
    window = lines[appended:first_delete]
    assert any(_mailbox_synced(line) for line in window), (
        "the spool's records were deleted before the drained message was fsynced in the mailbox:\n" + "\n".join(window)
    )
