"""Take your mail with you (issue 22), over real HTTPS: the export read back with Python's
``mailbox`` and ``zipfile`` equals what a mail program APPENDed over IMAP (8-bit text, UTF-8
header fields, flags), with the mailboxes in this process and behind a store component; nothing
of a message lands in the data directory; memory stays bounded on a large mailbox."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from storekit import StoreThread

from sealmail.services import aliases, credentials
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

from privacyscan import Secrets, assert_no_secrets
from selfkit import ADDRESS, append_all, imap_client, make_alias, mbox_messages, messages, read_zip
from support import ComponentThread, free_port, wait_for
from webkit import AccountBrowser


@pytest.fixture(params=["local", "remote"])
def served(request, web_settings, tmp_path):
    """The web area and IMAP, with the mailboxes in this process or behind a store component (the
    data host, here in its own thread: ``SEALMAIL_TEST_STORE=remote``'s arrangement)."""
    data = StoreThread(web_settings, tmp_path / "store-tls") if request.param == "remote" else None
    front = data.client_settings(web_settings) if data else web_settings
    web = ComponentThread("web", front)
    imap = ComponentThread("imap", front.model_copy(update={"imaps_port": 0, "imap_port": 0}))
    try:
        yield SimpleNamespace(web=web, imap=imap, mode=request.param, data=data)
    finally:
        imap.stop()
        web.stop()
        if data is not None:
            data.stop()


def _browser(web, certs) -> AccountBrowser:
    return AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)


def test_export_equals_what_was_appended(served, store, web_settings, certs, tmp_path) -> None:
    password = make_alias(store, web_settings)
    client = imap_client(served.imap.ports["imaps"], certs.ca_cert, ADDRESS, password)
    sent = messages()
    append_all(client, sent)
    client.logout()
    b = _browser(served.web, certs)
    try:
        b.sign_in(ADDRESS, password)
        page = b.get("/account/takeout").text
        assert "Download the export" in page

        r = b.post("/account/takeout/export", {"format": "mbox", "password": "wrong password"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("text/html")
        assert "That password is wrong." in r.text

        r = b.post("/account/takeout/export", {"format": "mbox", "password": password})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["cache-control"] == "no-store"
        assert "filename*=UTF-8''r%C3%A9mi%40universit%C3%A9xyz.fr-" in r.headers["content-disposition"]
        archive = read_zip(r.content)
        names = archive.namelist()
        assert names[0] == "INBOX.mbox"
        for folder in ("Drafts", "Sent", "Junk", "Trash", "Archive", "Archive/2026"):
            assert f"{folder}.mbox" in names
        assert "README.txt" in names
        inbox = mbox_messages(archive, "INBOX.mbox", tmp_path)
        assert [m for m, _ in inbox] == [raw for folder, raw, _ in sent if folder == "INBOX"]
        assert [flags for _, flags in inbox] == [set(), {"R", "O", "F"}]
        (archived,) = mbox_messages(archive, "Archive/2026.mbox", tmp_path)
        assert archived == (sent[2][1], {"A"})
        assert archive.read("Trash.mbox") == b""

        r = b.post("/account/takeout/export", {"format": "eml", "password": password})
        assert r.status_code == 200
        eml = read_zip(r.content)
        assert eml.read("INBOX/1.eml") == sent[0][1]  # the octets that were APPENDed, 8-bit and all
        assert eml.read("INBOX/2.eml") == sent[1][1]
        assert eml.read("Archive/2026/1.eml") == sent[2][1]
        assert "Trash/" in eml.namelist()

        r = b.post("/account/takeout/export", {"format": "pst", "password": password})
        assert r.status_code == 422
    finally:
        b.close()


def test_mail_waiting_in_the_spool_is_exported_too(served, store, web_settings, certs, tmp_path) -> None:
    """The export opens the mailbox as a login does: sealed mail delivered since is drained first."""
    password = make_alias(store, web_settings)
    credential = store.get_credential(aliases.get_alias(store, ADDRESS).id)
    raw = b"Subject: delivered while away\r\nMessage-ID: <w@example.test>\r\n\r\nsealed until now\r\n"
    served.web.call(served.web.component.ctx.mailstore.deliver_async(credential.mailbox_id, credential.public_key, raw))
    b = _browser(served.web, certs)
    try:
        b.sign_in(ADDRESS, password)
        r = b.post("/account/takeout/export", {"format": "eml", "password": password})
        assert read_zip(r.content).read("INBOX/1.eml").endswith(b"sealed until now\r\n")
    finally:
        b.close()


# ---- bounded memory, nothing on disk -------------------------------------------------------------------
MARKER = "kumquat-zeppelin-7741"


def _fill(settings, address: str, password: str, *, first: int, messages: int, size: int = 1_000_000) -> int:
    """A large mailbox, written through the store in this process (as IMAP APPENDs would)."""
    import asyncio

    async def fill() -> int:
        unlocked = credentials.unlock(_config(settings), settings, address, password)
        store = MailStore(settings.data_dir, ev.InProcessBus())
        handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
        total = 0
        try:
            for i in range(first, first + messages):
                # A distinct attachment each (the store keeps one copy of equal ones), as large mail is.
                attachment = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
                raw = (
                    (
                        f"Subject: large {i} {MARKER}\r\nMessage-ID: <{i}@example.test>\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
                        f"{MARKER}\r\n--b\r\nContent-Type: application/octet-stream\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n"
                    ).encode()
                    + attachment
                    + b"--b--\r\n"
                )
                await handle.append("INBOX", raw, enforce_quota=False)
                total += len(raw)
        finally:
            await handle.release()
            await store.close()
        return total

    return asyncio.run(fill())


def _config(settings):
    from sealmail.config.sqlite import SQLiteConfigStore

    return SQLiteConfigStore(settings.config_db_path)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _export(b: AccountBrowser, password: str, pid: int, target: Path) -> int:
    """Read the export slowly into ``target`` (a slow client: the server must wait for it, not buffer);
    returns the web process's largest RSS seen meanwhile, in KiB."""
    peak = 0
    with (
        target.open("wb") as out,
        b.client.stream(
            "POST",
            "/account/takeout/export",
            data={"format": "eml", "password": password, "csrf": b.csrf},
            timeout=120,
        ) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_bytes(64 * 1024):
            out.write(chunk)
            if out.tell() % (8 << 20) < len(chunk):
                time.sleep(0.2)
                peak = max(peak, _rss_kib(pid))
    return max(peak, _peak_rss_kib(pid))


@pytest.mark.slow
def test_a_large_export_streams_in_bounded_memory_and_leaves_nothing_on_disk(
    sealmail_bin, web_settings, store, certs, tmp_path
) -> None:
    """``sealmail serve web`` in its own process exports a mailbox of ~40 MB, then the same mailbox
    grown to ~160 MB. The first export pays for what any export costs once (imports, the mailbox's
    page cache, the body cache: all bounded); the second, four times larger, must not make the
    process's peak RSS grow by more than a few MiB: memory does not follow the mailbox's size. After
    the exports no file under the data directory holds the messages' text or the mailbox key."""
    password = make_alias(store, web_settings)
    small = _fill(web_settings, ADDRESS, password, first=0, messages=40)
    port = free_port()
    run_dir = web_settings.data_dir / "run"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "SEALMAIL_DATA_DIR": str(web_settings.data_dir),
        "SEALMAIL_TLS_CERT_FILE": str(certs.cert),
        "SEALMAIL_TLS_KEY_FILE": str(certs.key),
        "SEALMAIL_WEB_PORT": str(port),
        "SEALMAIL_HTTP_PORT": "0",
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
        "SEALMAIL_REDIS_URL": web_settings.redis_url.get_secret_value(),
        "SEALMAIL_ARGON2_TIME_COST": "1",
        "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
        "SEALMAIL_DOMAIN": "example.test",
    }
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sealmail_bin, "serve", "web"], env=env, stdout=out, stderr=out)
    try:
        wait_for(lambda: (run_dir / "web.json").exists() or proc.poll() is not None, timeout=60, what="web.json")
        assert proc.poll() is None, log.read_text()
        b = AccountBrowser(f"https://127.0.0.1:{json.loads((run_dir / 'web.json').read_text())['ports']['web']}",
                           certs.ca_cert, None)  # fmt: skip
        b.sign_in(ADDRESS, password)
        b.get("/account/takeout")
        before = _rss_kib(proc.pid)
        first = _export(b, password, proc.pid, tmp_path / "first.zip")
        large = small + _fill(web_settings, ADDRESS, password, first=40, messages=120)
        b.get("/account/takeout")
        second = _export(b, password, proc.pid, tmp_path / "second.zip")
        b.close()
        print(
            f"\nweb RSS {before / 1024:.0f} MiB before; peak {first / 1024:.0f} MiB exporting {small / 1e6:.0f} MB, "
            f"{second / 1024:.0f} MiB exporting {large / 1e6:.0f} MB"
        )
        with zipfile.ZipFile(tmp_path / "second.zip") as archive:
            sizes = [i.file_size for i in archive.infolist() if i.filename.startswith("INBOX/")]
        assert (len(sizes), sum(sizes)) == (160, large)  # every message, whole
        assert (second - first) / 1024 < 16, "exporting four times more mail took more memory"
        assert (first - before) / 1024 < 128
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # Nothing of the messages in clear anywhere under the data directory (files, WAL, spool, logs).
    assert_no_secrets(web_settings.data_dir, Secrets().text("marker", MARKER).password("password", password))
    unlocked = credentials.unlock(store, web_settings, ADDRESS, password)
    assert_no_secrets(web_settings.data_dir, Secrets().key("mailbox key", unlocked.secrets.mailbox_key))


def test_a_client_that_leaves_half_way_lets_go_of_the_mailbox(store, web_settings, web, certs) -> None:
    """The export holds the mailbox open while it is sent; a client gone half-way closes it at once
    (its size is recorded as every session's close does)."""
    password = make_alias(store, web_settings)
    _fill(web_settings, ADDRESS, password, first=0, messages=12)
    alias = aliases.get_alias(store, ADDRESS)
    store.record_usage(alias.id, 1)
    b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        b.sign_in(ADDRESS, password)
        b.get("/account/takeout")
        data = {"format": "eml", "password": password, "csrf": b.csrf}
        with b.client.stream("POST", "/account/takeout/export", data=data) as r:
            assert r.status_code == 200
            next(r.iter_bytes(1024))
        wait_for(lambda: store.get_credential(alias.id).usage_bytes > 12_000_000, what="the mailbox's close")
    finally:
        b.close()


@pytest.mark.parametrize("served", ["remote"], indirect=True)
def test_with_the_data_host_away_the_area_says_try_again(served, store, web_settings, certs) -> None:
    """RFC 9110 §15.6.4: the store being away is a temporary condition (503 with Retry-After)."""
    password = make_alias(store, web_settings)
    b = _browser(served.web, certs)
    try:
        b.sign_in(ADDRESS, password)
        assert b.get("/account/").status_code == 200
        served.data.stop()
        r = b.get("/account/")
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) > 0
        assert "Try again in a moment" in r.text
    finally:
        b.close()
