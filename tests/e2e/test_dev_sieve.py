"""Issue 22 end to end on a `sealmail dev` tree: a user uploads and activates a script with Debian's
``sieve-connect`` over ManageSieve, and the MX files the next message where the script says, read
back over IMAP — every hop a real client against a real server."""

from __future__ import annotations

import imaplib
import os
import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from test_dev import _port_env, _start, _stop, _wait_for_dev_json

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamd", "sieve-connect")]

SCRIPT = """require ["fileinto", "mailbox", "imap4flags"];
# RFC 5490 §3.2: the folder is made when the first message is filed in it.
if header :contains "List-Id" "talk.lists.example.org" {
    fileinto :create :flags "\\\\Flagged" "Lists";
    stop;
}
"""


def _sieve_connect(info: dict, *args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.write(write, (info["password"] + "\n").encode())
    os.close(write)
    try:
        return subprocess.run(
            ["sieve-connect", "--server", "127.0.0.1", "--port", str(info["ports"]["managesieve"]), "--nosrv",
             "--4", "--tlscafile", info["ca_cert"], "--noclearchan", "--user", info["alias"],
             "--authmech", "PLAIN", "--passwordfd", str(read), *args],
            pass_fds=(read,), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(read)


def _folder_messages(info: dict, tls: ssl.SSLContext, folder: str, subject: str) -> list[tuple[bytes, bytes]]:
    """(flags, header) of the messages with ``subject`` in ``folder``; waits for the folder to appear."""
    with imaplib.IMAP4_SSL("127.0.0.1", info["ports"]["imaps"], ssl_context=tls, timeout=30) as imap:
        imap.login(info["alias"], info["password"])
        deadline = time.monotonic() + 30
        while True:
            status, _ = imap.select(folder)
            if status == "OK":
                _, numbers = imap.search(None, "SUBJECT", f'"{subject}"')
                if numbers[0] or time.monotonic() > deadline:
                    break
            elif time.monotonic() > deadline:
                return []
            time.sleep(0.5)
        found = []
        for number in numbers[0].split():
            _, data = imap.fetch(number, "(FLAGS BODY.PEEK[HEADER])")
            found.append((data[0][0], data[0][1]))
        return found


def test_rfc5804_a_script_sieve_connect_activates_files_the_next_message_rfc5228_4_1(
    sealmail_bin, clean_env, tmp_path: Path
) -> None:
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        script = tmp_path / "lists.sieve"
        script.write_text(SCRIPT)
        for action in (
            ("--upload", "--localsieve", str(script), "--remotesieve", "lists"),
            ("--activate", "--remotesieve", "lists"),
        ):
            done = _sieve_connect(info, *action)
            assert done.returncode == 0, done.stdout + done.stderr
        listed = _sieve_connect(info, "--list")
        assert listed.stdout.splitlines() == ['"lists" ACTIVE'], listed.stdout + listed.stderr

        subject = "sieve end to end"
        with smtplib.SMTP("127.0.0.1", info["ports"]["mx"], timeout=30) as client:
            client.sendmail(
                "someone@example.org",
                [info["alias"]],
                f"From: someone@example.org\r\nTo: {info['alias']}\r\nSubject: {subject}\r\n"
                "List-Id: Talk <talk.lists.example.org>\r\nMessage-ID: <e2e-sieve@example.org>\r\n\r\nto the list\r\n",
            )
            client.sendmail(
                "someone@example.org",
                [info["alias"]],
                f"From: someone@example.org\r\nTo: {info['alias']}\r\nSubject: {subject} direct\r\n"
                "Message-ID: <e2e-direct@example.org>\r\n\r\nnot to the list\r\n",
            )
        tls = ssl.create_default_context(cafile=info["ca_cert"])
        filed = _folder_messages(info, tls, "Lists", subject)
        assert len(filed) == 1, filed
        flags, header = filed[0]
        assert b"\\Flagged" in flags
        assert b"Message-ID: <e2e-sieve@example.org>" in header
        kept = _folder_messages(info, tls, "INBOX", f"{subject} direct")
        assert len(kept) == 1, "mail the script does not file stays in INBOX"
    finally:
        _stop(proc)
