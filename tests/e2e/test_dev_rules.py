"""Issue 22 end to end on a `sealmail dev` tree: a filter set in the account page's Filters and vacation
room (over HTTPS, with its CSRF token) files the next message the MX takes into its folder, made by
``:create`` with a non-ASCII name, read back over IMAP; other mail stays in INBOX. The filter's
value is written in capitals and the subject in small letters, accents included: the MX compares
them with ``i;unicode-casemap`` (RFC 5051), as the rules editor writes."""

from __future__ import annotations

import smtplib
import ssl
import time
from pathlib import Path

import pytest
from test_dev import _port_env, _start, _stop, _wait_for_dev_json
from test_dev_sieve import _folder_messages

from sealmail.imap import mutf7

from webkit import AccountBrowser

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamd")]

FOLDER = "Réunions/Été"


def test_rfc5228_4_1_a_filter_set_in_the_page_files_the_next_message(sealmail_bin, clean_env, tmp_path: Path) -> None:
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        page = AccountBrowser(f"https://127.0.0.1:{info['ports']['web']}", Path(info["ca_cert"]), None)
        try:
            assert page.sign_in(info["alias"], info["password"]).status_code == 303
            r = page.post(
                "/account/rules/filters",
                {"field": "subject", "match": "contains", "value": "RÉUNION", "action": "fileinto", "folder": FOLDER},
            )
            assert r.status_code == 303, r.text
            assert FOLDER in page.get("/account/rules").text
        finally:
            page.close()

        subject = "Compte rendu de la réunion"
        with smtplib.SMTP("127.0.0.1", info["ports"]["mx"], timeout=30) as client:
            for text, mid in ((subject, "e2e-rules"), ("something else", "e2e-rules-direct")):
                client.sendmail(
                    "someone@example.org",
                    [info["alias"]],
                    f"From: someone@example.org\r\nTo: {info['alias']}\r\nSubject: {text}\r\n"
                    f"Message-ID: <{mid}@example.org>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n".encode(),
                )
        tls = ssl.create_default_context(cafile=info["ca_cert"])
        # IMAP names the folder in modified UTF-7 (RFC 3501 §5.1.3); the subject is searched as ASCII.
        filed = _folder_messages(info, tls, '"' + mutf7.encode(FOLDER) + '"', "Compte rendu")
        assert len(filed) == 1, filed
        assert b"Message-ID: <e2e-rules@example.org>" in filed[0][1]
        kept = _folder_messages(info, tls, "INBOX", "something else")
        assert len(kept) == 1, "mail the filter does not match stays in INBOX"
    finally:
        _stop(proc)
