"""The MX's ``250`` after DATA comes only after the message is on disk (RFC 5321 §4.1.1.4, §6.1).

A kill -9 cannot show a missing fsync (the page cache survives a killed process), so this watches
the system calls instead: ``sealmail serve mx`` runs under strace, a client sends one message, and
the trace must show an fsync/fdatasync of the spool (its database or its WAL) between the final dot
arriving and the ``250`` leaving. Dropping ``synchronous = FULL`` (or answering before COMMIT) makes
it fail.

The hot mailbox: several connections deliver to one alias at once, with one session process, with
two each appending, and with two handing their sealed records to the one spool writer in the
accepting process (``mx_spool_handoff_max``), which commits them together. For
every message, after its final dot the trace must show a write to the spool, then an fsync of it,
then its ``250``: a batch's fsync covers only records written before it.
"""

from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from sealmail.services import aliases, credentials, domains

from support import serve_traced

pytestmark = pytest.mark.slow

MESSAGE = b"From: <a@example.org>\r\nTo: <demo@example.test>\r\nSubject: fsync order\r\n\r\nmarker-body-7f3a\r\n"


def _reply(f) -> bytes:
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def _run_traced(
    sealmail_bin, clean_env, settings, config, tmp_path, processes: int, send, extra: dict[str, str] | None = None
) -> list[str]:
    """``sealmail serve mx`` under strace while ``send(port)`` runs; returns the trace's lines."""
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    credentials.set_password(config, settings, "demo@example.test")
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PROCESSES": str(processes),
        "SEALMAIL_MX_AUTH_WORKERS": "1",
        **(extra or {}),
    }
    return serve_traced(
        sealmail_bin, "mx", env, settings.run_dir, tmp_path / "mx.trace",
        "fsync,fdatasync,read,recvfrom,recvmsg,write,sendto,sendmsg,writev,pwrite64,rename,renameat,renameat2",
        "mx", send,
    )  # fmt: skip


def _send(port: int, markers: list[str]) -> None:
    """One connection: one message per marker, each answered ``250``."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock, sock.makefile("rb") as f:
        assert _reply(f).startswith(b"220")
        sock.sendall(b"EHLO client.example.org\r\n")
        assert _reply(f).startswith(b"250")
        for marker in markers:
            for command, code in ((b"MAIL FROM:<a@example.org>", b"250"), (b"RCPT TO:<demo@example.test>", b"250"),
                                  (b"DATA", b"354")):  # fmt: skip
                sock.sendall(command + b"\r\n")
                assert _reply(f).startswith(code), command
            sock.sendall(MESSAGE.replace(b"marker-body-7f3a", marker.encode()) + b".\r\n")
            assert _reply(f).startswith(b"250"), marker
        sock.sendall(b"QUIT\r\n")
        _reply(f)


def _spans(lines: list[str], marker: str) -> tuple[int, int]:
    """(the line where the message's final dot arrives, the line where its 250 leaves)."""
    # The final dot arriving: the body read from the client's socket (strace -y names it socket:[inode]);
    # a call another thread interrupted is "<... recvfrom resumed>", its descriptor on its first half.
    arrived = []
    for i, line in enumerate(lines):
        if marker not in line:
            continue
        if m := re.search(r"\b(?:read|recvfrom|recvmsg)\((\d+<socket:\[\d+\]>)", line):
            arrived.append((i, m.group(1)))
        elif re.search(r"<\.\.\. (?:read|recvfrom|recvmsg) resumed>", line):
            pid = line.split()[0]
            start = next(j for j in range(i - 1, -1, -1) if lines[j].split()[0] == pid and "unfinished" in lines[j])
            if m := re.search(r"\b(?:read|recvfrom|recvmsg)\((\d+<socket:\[\d+\]>)", lines[start]):
                arrived.append((i, m.group(1)))
    dot, client = arrived[0]
    pid = lines[dot].split()[0]
    answer = next((i for i in range(dot, len(lines)) if re.search(r"\b(?:write|sendto|sendmsg|writev)\(", lines[i])
                   and lines[i].split()[0] == pid and client in lines[i] and '"250 ' in lines[i]), None)  # fmt: skip
    assert answer is not None, f"the trace never shows the 250 for {marker} leaving"
    return dot, answer


def test_the_250_after_data_follows_an_fsync_of_the_spool(sealmail_bin, clean_env, settings, config, tmp_path):
    lines = _run_traced(
        sealmail_bin, clean_env, settings, config, tmp_path, 1, lambda port: _send(port, ["marker-body-7f3a"])
    )
    dot, answer = _spans(lines, "marker-body-7f3a")
    synced = [line for line in lines[dot:answer] if re.search(r"\bf(?:data)?sync\(\d+</[^>]*/spool/", line)]
    assert synced, "no fsync of the spool between the final dot and the 250:\n" + "\n".join(lines[dot : answer + 1])


def test_a_message_held_in_the_outbox_is_written_synced_renamed_and_its_directory_synced_before_250(
    sealmail_bin, clean_env, settings, config, tmp_path
):
    """Issue 19, a front-end MX whose data host's store is away: the sealed record goes to the local
    outbox, and its ``250`` (RFC 5321 §4.1.1.4: the server has taken responsibility) leaves only
    after the file was written and fsynced, renamed into place, and the outbox directory fsynced
    (the rename itself is durable only with its directory: a crash after the reply loses nothing)."""
    from storekit import store_certs

    from support import free_port

    certs = store_certs(tmp_path / "tls")
    away = {  # a store URL nothing answers at: refused, so the MX holds the message
        "SEALMAIL_STORE_URL": f"wss://localhost:{free_port()}",
        "SEALMAIL_STORE_CA_FILE": str(certs.ca),
        "SEALMAIL_STORE_CLIENT_CERT_FILE": str(certs.client_cert),
        "SEALMAIL_STORE_CLIENT_KEY_FILE": str(certs.client_key),
    }
    lines = _run_traced(
        sealmail_bin, clean_env, settings, config, tmp_path, 1, lambda port: _send(port, ["marker-held-91c2"]), away
    )
    dot, answer = _spans(lines, "marker-held-91c2")
    window = lines[dot : answer + 1]

    def first(pattern: str) -> int:
        found = next((i for i, line in enumerate(window) if re.search(pattern, line)), None)
        assert found is not None, f"no {pattern!r} between the final dot and the 250:\n" + "\n".join(window)
        return found

    written = first(r"\bwrite\(\d+</[^>]*/outbox/\.[0-9a-f-]+\.tmp>")
    synced = first(r"\bf(?:data)?sync\(\d+</[^>]*/outbox/\.[0-9a-f-]+\.tmp>")
    renamed = first(r"\brename(?:at2?)?\(.*/outbox/\.[0-9a-f-]+\.tmp\".*/outbox/[0-9a-f-]+\.sealed\"")
    directory = first(r"\bf(?:data)?sync\(\d+</[^>]*/outbox>")
    assert written < synced < renamed < directory < len(window) - 1, window
    held = list((settings.data_dir / "outbox").glob("*.sealed"))
    assert len(held) == 1
    assert b"marker-held-91c2" not in held[0].read_bytes()  # sealed: no plaintext waits on the front-end


CONNECTIONS = 6
PER_CONNECTION = 3


@pytest.mark.parametrize(
    ("processes", "handoff"),
    [(1, 0), (2, 0), (2, 1 << 20)],
    ids=["one-process", "two-processes", "two-processes-one-spool-writer"],
)
def test_concurrent_messages_to_one_mailbox_are_each_written_then_fsynced_before_their_250(
    sealmail_bin, clean_env, settings, config, tmp_path, processes, handoff
):
    markers = [[f"marker-c{c}-m{m}-5e1d" for m in range(PER_CONNECTION)] for c in range(CONNECTIONS)]

    def send(port: int) -> None:
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            for done in [pool.submit(_send, port, mine) for mine in markers]:
                done.result()

    # Each spool transaction is held open 0.2 s before COMMIT (a test hook, see store/spool.py): a
    # 250 sent before its batch committed would then leave before the batch's write and fsync.
    lines = _run_traced(
        sealmail_bin,
        clean_env,
        settings,
        config,
        tmp_path,
        processes,
        send,
        {"SEALMAIL_TEST_SPOOL_COMMIT_DELAY": "0.2", "SEALMAIL_MX_SPOOL_HANDOFF_MAX": str(handoff)},
    )
    spool_write = re.compile(r"\bpwrite64\(\d+</[^>]*/spool/")
    spool_sync = re.compile(r"\bf(?:data)?sync\(\d+</[^>]*/spool/")
    syncs = 0
    for marker in (m for mine in markers for m in mine):
        dot, answer = _spans(lines, marker)
        written = next((i for i in range(dot, answer) if spool_write.search(lines[i])), None)
        assert written is not None, f"{marker}: no write to the spool between its final dot and its 250"
        synced = [i for i in range(written, answer) if spool_sync.search(lines[i])]
        assert synced, f"{marker}: the spool was written after its final dot but not fsynced before its 250"
    syncs = sum(1 for line in lines if spool_sync.search(line) and "resumed" not in line)
    assert syncs >= 1
