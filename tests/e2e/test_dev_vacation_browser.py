"""Issue 22's browser promise end to end on a `sealmail dev` tree: a user signs in to the account
pages in Debian's chromium (Playwright), sets a vacation reply, and the next message another user
sends them is answered (RFC 5230) — the reply read in the sender's own mailbox over IMAP, once
however many messages that sender sends within ``:days`` (RFC 5230 §4.2)."""

from __future__ import annotations

import email
import email.policy
import imaplib
import json
import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from browserkit import launch
from test_dev import _port_env, _start, _stop, _wait_for_dev_json

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamd", "chromium")]

SENDER = "colleague@example.test"
REPLY_SUBJECT = "Absent jusqu'au 5 janvier"


def _replies(info: dict, tls: ssl.SSLContext, password: str, want: int, timeout: float = 60) -> list[bytes]:
    """The vacation replies in the sender's INBOX (waits until ``want`` are there, or the timeout)."""
    deadline = time.monotonic() + timeout
    with imaplib.IMAP4_SSL("127.0.0.1", info["ports"]["imaps"], ssl_context=tls, timeout=30) as imap:
        imap.login(SENDER, password)
        while True:
            imap.select("INBOX")
            _, numbers = imap.search(None, "HEADER", "Auto-Submitted", "auto-replied")
            if len(numbers[0].split()) >= want or time.monotonic() > deadline:
                break
            time.sleep(1)
        return [imap.fetch(n, "(BODY.PEEK[])")[1][0][1] for n in numbers[0].split()]


def test_rfc5230_a_vacation_reply_set_in_chromium_reaches_the_senders_mailbox(
    sealmail_bin, clean_env, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    data_dir = tmp_path / "dev-data"
    env = {**clean_env, **_port_env()}
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, env)
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        made = subprocess.run(
            [sealmail_bin, "alias", "add", SENDER, "--password", "--json", "--data-dir", str(data_dir)],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        sender_password = json.loads(made.stdout)["password"]

        with sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_context(ignore_https_errors=True).new_page()
                page.goto(f"https://127.0.0.1:{info['ports']['web']}/account/rules")
                page.get_by_label("Email address").fill(info["alias"])
                page.get_by_label("Password").fill(info["password"])
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("heading", name="Filters and vacation", exact=True)).to_be_visible()
                page.get_by_label("Send a vacation reply").check()
                page.get_by_label("Subject", exact=False).first.fill(REPLY_SUBJECT)
                page.get_by_label("Message", exact=True).fill("Je lis mes messages à mon retour.")
                page.get_by_role("button", name="Save the vacation reply").click()
                expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
            finally:
                browser.close()

        tls = ssl.create_default_context(cafile=info["ca_cert"])
        with smtplib.SMTP_SSL("127.0.0.1", info["ports"]["submission_tls"], context=tls, timeout=30) as client:
            client.login(SENDER, sender_password)
            for n in (1, 2):  # the second within :days gets no second reply
                client.sendmail(
                    SENDER,
                    [info["alias"]],
                    f"From: {SENDER}\r\nTo: {info['alias']}\r\nSubject: question {n}\r\n"
                    f"Message-ID: <vacation-{n}@example.test>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nTu es là ?\r\n".encode(),
                )
        replies = _replies(info, tls, sender_password, want=1)
        assert len(replies) == 1, replies
        reply = email.message_from_bytes(replies[0], policy=email.policy.default)
        assert reply["Subject"] == REPLY_SUBJECT
        assert reply["Auto-Submitted"].split("(")[0].strip() == "auto-replied"  # RFC 3834 §5 (a comment may follow)
        # The queue may hand the two messages over in either order: the reply answers whichever came first.
        assert reply["In-Reply-To"] in ("<vacation-1@example.test>", "<vacation-2@example.test>")
        assert "Je lis mes messages à mon retour." in reply.get_body(("plain",)).get_content()
        time.sleep(5)  # the second message had time to be answered too, if it were
        assert len(_replies(info, tls, sender_password, want=2, timeout=1)) == 1
    finally:
        _stop(proc)
