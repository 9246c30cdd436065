"""The MX's ``250`` after DATA comes only after the message is on disk (RFC 5321 §4.1.1.4, §6.1).

A kill -9 cannot show a missing fsync (the page cache survives a killed process), so this watches
the system calls instead: ``sealmail serve mx`` runs under strace, a client sends one message, and
the trace must show an fsync/fdatasync of the spool (its database or its WAL) between the final dot
arriving and the ``250`` leaving. Dropping ``synchronous = FULL`` (or answering before COMMIT) makes
it fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from sealmail.services import aliases, credentials, domains

from support import wait_for

pytestmark = pytest.mark.slow

MESSAGE = b"From: <a@example.org>\r\nTo: <demo@example.test>\r\nSubject: fsync order\r\n\r\nmarker-body-7f3a\r\n"


def _reply(f) -> bytes:
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def test_the_250_after_data_follows_an_fsync_of_the_spool(sealmail_bin, clean_env, settings, config, tmp_path):
    if shutil.which("strace") is None:  # scripts/system-deps test installs it
        pytest.fail("strace is not installed (apt install strace)")
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    credentials.set_password(config, settings, "demo@example.test")
    env = {
        **clean_env,
        "SEALMAIL_DATA_DIR": str(settings.data_dir),
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_MX_PROCESSES": "1",
    }
    trace = tmp_path / "mx.trace"
    ready = settings.run_dir / "mx.json"
    proc = subprocess.Popen(
        [shutil.which("strace"), "-f", "-y", "-s", "200", "-o", str(trace), "-e", "signal=none",
         "-e", "trace=fsync,fdatasync,read,recvfrom,recvmsg,write,sendto,sendmsg,writev",
         sealmail_bin, "serve", "mx"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60, what="mx.json")
        assert proc.poll() is None, "the MX did not start under strace"
        port = json.loads(ready.read_text())["ports"]["mx"]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rb") as f:
            assert _reply(f).startswith(b"220")
            for command, code in ((b"EHLO client.example.org", b"250"), (b"MAIL FROM:<a@example.org>", b"250"),
                                  (b"RCPT TO:<demo@example.test>", b"250"), (b"DATA", b"354")):  # fmt: skip
                sock.sendall(command + b"\r\n")
                assert _reply(f).startswith(code), command
            sock.sendall(MESSAGE + b".\r\n")
            assert _reply(f).startswith(b"250")
            sock.sendall(b"QUIT\r\n")
            _reply(f)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the MX stops, then strace ends with it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    lines = trace.read_text(errors="replace").splitlines()
    # The final dot arriving: the body read from the client's socket (strace -y names it socket:[inode]).
    arrived = [(i, m.group(1)) for i, line in enumerate(lines)
               if (m := re.search(r"\b(?:read|recvfrom|recvmsg)\((\d+<socket:\[\d+\]>)", line))
               and "marker-body-7f3a" in line]  # fmt: skip
    assert arrived, "the trace never shows the message arriving"
    dot, client = arrived[0]
    answer = next((i for i in range(dot, len(lines)) if re.search(r"\b(?:write|sendto|sendmsg|writev)\(", lines[i])
                   and client in lines[i] and '"250 ' in lines[i]), None)  # fmt: skip
    assert answer is not None, "the trace never shows the 250 leaving"
    synced = [line for line in lines[dot:answer] if re.search(r"\bf(?:data)?sync\(\d+</[^>]*/spool/", line)]
    assert synced, "no fsync of the spool between the final dot and the 250:\n" + "\n".join(lines[dot : answer + 1])
