"""The mailbox's latest encrypted backup, downloaded by its user (issue 22), from a real
S3-compatible server (OpenStack Swift's s3api): before any backup the area says so; after
``backup run`` the archive holds the encrypted files as the bucket does, and the script inside it
opens them with the password, or the recovery key, and nothing else."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import sys
from datetime import UTC, datetime

import boto3
import httpx
import pytest
from botocore.config import Config
from pydantic import SecretStr
from s3server import SwiftS3, available

from sealmail.backup import keys as backup_keys
from sealmail.backup.run import run_backup
from sealmail.services import aliases, credentials, selfservice
from sealmail.store import events as ev
from sealmail.store.mailstore import MailStore

from selfkit import ADDRESS, make_alias, read_zip
from support import ComponentThread, missing
from webkit import AccountBrowser

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _swift() -> None:
    if not available():
        missing(
            "OpenStack Swift and memcached", "swift swift-proxy swift-object swift-container swift-account memcached"
        )


@pytest.fixture(scope="module")
def swift(tmp_path_factory):
    with SwiftS3(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def backed_up(web_settings, swift, tmp_path):
    """The web settings with backups to a bucket of the test's own."""
    bucket = f"self-{tmp_path.name.lower().replace('_', '-')[-20:]}"
    client = boto3.client(
        "s3",
        endpoint_url=swift.endpoint,
        region_name=swift.region,
        aws_access_key_id=swift.access_key,
        aws_secret_access_key=swift.secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=bucket)
    client.close()
    private, public = backup_keys.new_key_pair()
    return web_settings.model_copy(
        update={
            "backup_s3_endpoint": swift.endpoint,
            "backup_s3_bucket": bucket,
            "backup_s3_access_key": swift.access_key,
            "backup_s3_secret_key": SecretStr(swift.secret_key),
            "backup_prefix": "mail.example.test",
            "backup_public_key": public,
            "backup_manifest_key": SecretStr(backup_keys.manifest_key_text(backup_keys.read_private_text(private))),
        }
    )


def _append(settings, password: str, count: int) -> None:
    from sealmail.config.sqlite import SQLiteConfigStore

    config = SQLiteConfigStore(settings.config_db_path)
    try:
        unlocked = credentials.unlock(config, settings, ADDRESS, password)
    finally:
        config.close()
    box = MailStore(settings.data_dir, ev.InProcessBus()).open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        for i in range(count):
            box.append("INBOX", f"Subject: kept {i}\r\nMessage-ID: <{i}@b.test>\r\n\r\nbody {i}\r\n".encode())
    finally:
        box.close()


def _open(directory, secret: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "open-mailbox.py", "--stdin", *args],
        cwd=directory,
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_latest_backup_is_downloaded_and_opens_with_the_password(
    backed_up, store, certs, tmp_path, web_settings
) -> None:
    password = make_alias(store, backed_up)
    _append(backed_up, password, 5)
    web = ComponentThread("web", backed_up)
    b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        b.sign_in(ADDRESS, password)
        assert "There is no backup of your mailbox yet" in b.get("/account/takeout").text
        r = b.get("/account/takeout/backup")
        assert r.status_code == 404
        assert "no backup of your mailbox yet" in r.text

        report = run_backup(backed_up, None)
        page = b.get("/account/takeout").text
        assert "The latest backup of your mailbox was made on" in page
        assert datetime.now(UTC).strftime("%Y-%m-%d") in page
        r = b.get("/account/takeout/backup")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert "backup-" in r.headers["content-disposition"]
        archive = read_zip(r.content)
        names = set(archive.namelist())
        assert {"mailbox.sqlite", "keys.json", "open-mailbox.py", "README.txt"} <= names
        assert not archive.read("mailbox.sqlite").startswith(b"SQLite format 3")  # still encrypted
        key_file = json.loads(archive.read("keys.json"))
        assert key_file["recovery"] is None
        assert password not in archive.read("keys.json").decode()
        assert "python3 open-mailbox.py --decrypt" in archive.read("README.txt").decode()

        unpacked = tmp_path / "unpacked"
        archive.extractall(unpacked)
        wrong = _open(unpacked, "not the password", "--decrypt", "x.sqlite")
        assert wrong.returncode != 0
        assert "wrong password" in wrong.stderr
        opened = _open(unpacked, password, "--decrypt", "plain.sqlite")
        assert opened.returncode == 0, opened.stderr
        with sqlite3.connect(unpacked / "plain.sqlite") as plain:
            assert plain.execute("SELECT count(*) FROM messages").fetchone()[0] == 5
            folders = {row[0] for row in plain.execute("SELECT name FROM folders")}
        assert "INBOX" in folders
        key = _open(unpacked, password, "--key")
        unlocked = credentials.unlock(store, backed_up, ADDRESS, password)
        assert f"0x{unlocked.secrets.mailbox_key.hex()}" in key.stdout

        # A recovery key made since opens a copy downloaded after it, and the old password no longer
        # matters: the key file is the one of the moment of the download.
        me = selfservice.member(store, aliases.get_alias(store, ADDRESS).id)
        recovery = selfservice.new_recovery_key(store, unlocked, selfservice_actor())
        r = b.get("/account/takeout/backup")
        again = tmp_path / "again"
        read_zip(r.content).extractall(again)
        assert json.loads((again / "keys.json").read_text())["recovery"] is not None
        by_recovery = _open(again, recovery, "--recovery", "--decrypt", "plain.sqlite")
        assert by_recovery.returncode == 0, by_recovery.stderr
        assert me is not None
        assert report.files > 0
    finally:
        b.close()
        web.stop()


def selfservice_actor():
    from sealmail.services.eventlog import Actor

    return Actor("test", "test", "127.0.0.1")


def test_without_backups_set_up_the_area_says_so(web, store, web_settings, certs) -> None:
    password = make_alias(store, web_settings)
    b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        b.sign_in(ADDRESS, password)
        page = b.get("/account/takeout").text
        assert "This server has no backup it can give you." in page
        assert "backups are not configured" in page
        assert b.get("/account/takeout/backup").status_code == 503
    finally:
        b.close()


def test_the_api_gives_the_same_backup_to_the_addresss_own_token(backed_up, store, certs) -> None:
    password = make_alias(store, backed_up)
    _append(backed_up, password, 2)
    me = selfservice.member(store, aliases.get_alias(store, ADDRESS).id)
    _, token = selfservice.create_token(store, me, "backup script", selfservice_actor())
    api = ComponentThread("api", backed_up)
    try:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{api.ports['api']}",
            verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
            headers={"authorization": f"Bearer {token}"},
            timeout=60,
        ) as client:
            r = client.get("/v1/me/backup")
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
            run_backup(backed_up, None)
            r = client.get("/v1/me/backup")
            assert r.status_code == 200
            assert r.json()["size_bytes"] > 0
            r = client.get("/v1/me/backup/download")
            assert r.status_code == 200
            assert "mailbox.sqlite" in read_zip(r.content).namelist()
    finally:
        api.stop()


def test_a_damaged_object_in_the_bucket_breaks_the_download(backed_up, store, certs, swift) -> None:
    """The manifest names each object's SHA-256: an object changed in the bucket ends the archive
    before its end, so the download fails instead of passing for a good one."""
    from sealmail.backup.mailboxcopy import latest_copy

    password = make_alias(store, backed_up)
    _append(backed_up, password, 2)
    run_backup(backed_up, None)
    mailbox_id = store.get_credential(aliases.get_alias(store, ADDRESS).id).mailbox_id
    entry = latest_copy(backed_up, mailbox_id).entries[0]
    client = boto3.client(
        "s3",
        endpoint_url=swift.endpoint,
        region_name=swift.region,
        aws_access_key_id=swift.access_key,
        aws_secret_access_key=swift.secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.put_object(Bucket=backed_up.backup_s3_bucket, Key=entry.object, Body=b"\0" * entry.stored_size)
    client.close()
    web = ComponentThread("web", backed_up)
    b = AccountBrowser(f"https://127.0.0.1:{web.ports['web']}", certs.ca_cert, None)
    try:
        b.sign_in(ADDRESS, password)
        with pytest.raises(httpx.RemoteProtocolError):
            b.get("/account/takeout/backup")
    finally:
        b.close()
        web.stop()
