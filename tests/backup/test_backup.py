"""Backups to a real S3-compatible server (OpenStack Swift with s3api, see tests/s3server.py) and
restore, through the real console script.

The issue's words: "backup, change one mailbox, backup again (only that mailbox uploads), wipe the
data directory, restore, then read every message back over IMAP with the old password"; "wrong
S3 credentials, a bucket that disappears, a truncated object and a corrupted snapshot each give a
clear error and leave the previous good backup intact".
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from s3server import SwiftS3, available

from sealmail.backup import keys as backup_keys
from sealmail.backup.manifest import Manifest, runs_to_keep, seal_manifest
from sealmail.config.models import LogQuery
from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.services.dkim import ensure_keys
from sealmail.settings import load_settings
from sealmail.store.dav import NewItem
from sealmail.store.mailstore import MailStore
from sealmail.tls.devca import ensure_dev_certificates

from mailgen import message
from privacyscan import Secrets, assert_no_secrets
from support import ComponentThread, missing

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _swift() -> None:
    """Swift and memcached: as for any tool, a failure under CI=true, else a skip."""
    if not available():
        missing(
            "OpenStack Swift and memcached", "swift swift-proxy swift-object swift-container swift-account memcached"
        )


BUCKET = "sealmail-backups"
ADDRESSES = ("rémi@universitéxyz.fr", "alice@example.test")


@pytest.fixture(scope="module")
def swift(tmp_path_factory):
    with SwiftS3(tmp_path_factory.mktemp("s3")) as server:
        yield server


_clients: list = []


@pytest.fixture(scope="module", autouse=True)
def _close_clients():
    yield
    while _clients:
        _clients.pop().close()


def _client(swift, secret: str | None = None):
    """A boto3 client of the test's own (closed at the end of the module: no stray sockets)."""
    client = boto3.client(
        "s3",
        endpoint_url=swift.endpoint,
        region_name=swift.region,
        aws_access_key_id=swift.access_key,
        aws_secret_access_key=secret or swift.secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    _clients.append(client)
    return client


class Host:
    """A data directory with two aliases and mail, an env file, and the CLI to run against them."""

    def __init__(self, tmp_path, swift, sealmail_bin: str, bucket: str) -> None:
        self.tmp = tmp_path
        self.bin = sealmail_bin
        self.data = tmp_path / "data"
        certs = ensure_dev_certificates(tmp_path / "tls")  # outside the data dir: "file:" entries
        self.cert, self.key = certs.cert, certs.key
        self.ca = certs.ca_cert
        self.env = tmp_path / "sealmail.env"
        self.env.write_text(
            f"SEALMAIL_DATA_DIR={self.data}\nSEALMAIL_ARGON2_TIME_COST=1\nSEALMAIL_ARGON2_MEMORY_KIB=8192\n"
            f"SEALMAIL_TLS_CERT_FILE={certs.cert}\nSEALMAIL_TLS_KEY_FILE={certs.key}\nSEALMAIL_DOMAIN=example.test\n"
            f"SEALMAIL_BACKUP_S3_ENDPOINT={swift.endpoint}\nSEALMAIL_BACKUP_S3_BUCKET={bucket}\n"
            f"SEALMAIL_BACKUP_S3_ACCESS_KEY={swift.access_key}\nSEALMAIL_BACKUP_S3_SECRET_KEY={swift.secret_key}\n"
            "SEALMAIL_BACKUP_PREFIX=mail.example.test\n"
        )
        self.settings = load_settings(self.env, use_environ=False)
        self.passwords: dict[str, str] = {}
        self.mailbox_ids: dict[str, str] = {}
        self.public_keys: dict[str, bytes] = {}
        self.sent: dict[str, list[bytes]] = {a: [] for a in ADDRESSES}

    def setup(self) -> None:
        config = SQLiteConfigStore(self.settings.config_db_path)
        try:
            for address in ADDRESSES:
                domain = address.split("@")[1]
                with contextlib.suppress(Exception):
                    domains.add_domain(config, domain, self.settings)
                ensure_keys(self.settings, domain)
                alias = aliases.add_alias(config, address)
                self.passwords[address] = credentials.set_password(config, self.settings, address)
                credential = config.get_credential(alias.id)
                assert credential is not None
                self.mailbox_ids[address] = credential.mailbox_id
                self.public_keys[address] = credential.public_key
        finally:
            config.close()

    def deliver(self, address: str, n: int) -> None:
        """What the MX does: seal into the alias's spool."""
        store = MailStore(self.settings.data_dir)
        for _ in range(n):
            n = sum(len(v) for v in self.sent.values()) + 1
            raw = message(
                n, subject=f"Subject-Backup-Quince-{n:03d} for {address}", body=f"Body-Backup-Oboe-{n:03d}\r\n"
            )
            store.deliver(self.mailbox_ids[address], self.public_keys[address], raw)
            self.sent[address].append(raw)

    def drain(self, address: str) -> None:
        """What a login does: unlock, then move the spool into the encrypted mailbox."""
        config = SQLiteConfigStore(self.settings.config_db_path)
        try:
            unlocked = credentials.unlock(config, self.settings, address, self.passwords[address])
        finally:
            config.close()
        store = MailStore(self.settings.data_dir)
        box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
        try:
            box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key)
        finally:
            box.close()

    def with_mailbox(self, address: str, action):
        """Unlock with the password and run ``action(mailbox)`` (what IMAP, POP3 and DAV do)."""
        config = SQLiteConfigStore(self.settings.config_db_path)
        try:
            unlocked = credentials.unlock(config, self.settings, address, self.passwords[address])
        finally:
            config.close()
        store = MailStore(self.settings.data_dir)
        box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
        try:
            return action(box)
        finally:
            box.close()

    def cli(self, *args: str, env_file=None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.bin, "backup", *args, "--env-file", str(env_file or self.env)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result


@pytest.fixture
def host(tmp_path, swift, sealmail_bin, clean_env):
    bucket = f"{BUCKET}-{tmp_path.name.lower().replace('_', '-')[-20:]}"
    _client(swift).create_bucket(Bucket=bucket)
    h = Host(tmp_path, swift, sealmail_bin, bucket)
    h.bucket = bucket
    h.setup()
    init = h.cli("init-key", "--json")
    h.private_key = tmp_path / "operator.key"  # kept off the "server" (outside the data dir)
    h.private_key.write_text(json.loads(init.stdout)["private_key"])
    h.settings = load_settings(h.env, use_environ=False)  # now with the public key
    return h


EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:backup-event-1\r\n"
    "DTSTAMP:20261124T090000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n"
    "SUMMARY:Restore drill\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
CARD = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:backup-card-1\r\nFN:Chloé Martin\r\nEND:VCARD\r\n"


def _add_calendar_and_contact(box) -> None:
    box.dav_create_collection("calendar", "VCALENDAR")
    box.dav_put_item("calendar", NewItem("event.ics", "backup-event-1", '"e1"', "VCALENDAR", "VEVENT", 0, 0, EVENT))
    box.dav_create_collection("contacts", "VADDRESSBOOK")
    box.dav_put_item("contacts", NewItem("card.vcf", "backup-card-1", '"c1"', "VCARD", "", 0, 0, CARD))


def _imap_read_all(settings, address: str, password: str, ca) -> list[bytes]:
    server = ComponentThread(
        "imap", settings.model_copy(update={"imaps_port": 0, "imap_port": 0, "bind_addresses": ["127.0.0.1"]})
    )
    try:
        client = imaplib.IMAP4_SSL(
            "127.0.0.1", server.ports["imaps"], ssl_context=ssl.create_default_context(cafile=str(ca)), timeout=30
        )
        client._encoding = "utf-8"
        client.login(f'"{address}"', password)
        client.select("INBOX")
        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        client.logout()
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        server.stop()


def _secrets(host) -> Secrets:
    """Every sent message's markers, every alias's password and unwrapped keys, the DAV text."""
    found = Secrets().text("event", "Restore drill").text("contact", "Chloé Martin")
    config = SQLiteConfigStore(host.settings.config_db_path)
    try:
        for address, password in host.passwords.items():
            found.password(f"password of {address}", password)
            found.unlocked(address, credentials.unlock(config, host.settings, address, password))
    finally:
        config.close()
    for n in range(1, sum(len(sent) for sent in host.sent.values()) + 1):
        found.text("message subject", f"Subject-Backup-Quince-{n:03d}").text(
            "message body", f"Body-Backup-Oboe-{n:03d}"
        )
    return found


def test_backup_change_one_mailbox_wipe_restore_and_read_over_imap(host, swift) -> None:
    """After a restore every alias logs in with its old password and sees its mail (over IMAP),
    calendars and contacts; no file of the restored data directory, nor any object the S3 server
    stored, holds a message's text, a password or a key (``privacyscan``: every offset of every file)."""
    remi, alice = ADDRESSES
    host.deliver(remi, 3)
    host.drain(remi)  # rémi's mail is in the encrypted mailbox; alice's waits sealed in the spool
    host.deliver(alice, 2)

    first = json.loads(host.cli("run", "--json").stdout)
    names = set(first["uploaded"])
    remi_box = f"data/mailboxes/{host.mailbox_ids[remi]}.sqlite"
    assert remi_box in names
    assert f"data/spool/{host.mailbox_ids[alice]}.sqlite" in names
    assert "data/config.sqlite" in names
    assert f"file:{host.env.resolve()}" in names
    assert f"file:{host.key.resolve()}" in names

    host.deliver(remi, 1)  # one mailbox changes
    host.drain(remi)
    second = json.loads(host.cli("run", "--json").stdout)
    changed = set(second["uploaded"])
    assert any(n.startswith(f"data/mailboxes/{host.mailbox_ids[remi]}") for n in changed)
    assert not any(host.mailbox_ids[alice] in n for n in changed)  # alice's files were not uploaded again
    assert not any(n.startswith("file:") or "dkim" in n for n in changed)
    assert second["files"] == first["files"] or second["files"] == first["files"] + 1  # a WAL may appear
    assert host.cli("verify").returncode == 0

    # Calendars and contacts live in the same encrypted database.
    host.with_mailbox(remi, _add_calendar_and_contact)
    host.cli("run")

    assert_no_secrets(host.data, _secrets(host), min_files=5)  # backed up three times
    shutil.rmtree(host.data)  # the host is gone: data directory, TLS key and all
    host.key.unlink()
    restored = host.cli("restore", "--key-file", str(host.private_key), "--json")
    assert json.loads(restored.stdout)["moved_aside"] == []
    assert host.key.exists()

    settings = load_settings(host.env, use_environ=False)
    host.settings = settings
    calendars = host.with_mailbox(remi, lambda box: {c.name: box.dav_items(c.name) for c in box.dav_collections()})
    assert [i.uid for i in calendars["calendar"]] == ["backup-event-1"]
    assert "SUMMARY:Restore drill" in calendars["calendar"][0].body
    assert [i.uid for i in calendars["contacts"]] == ["backup-card-1"]
    for address in ADDRESSES:
        got = _imap_read_all(settings, address, host.passwords[address], host.ca)
        assert len(got) == len(host.sent[address])
        for sent, received in zip(host.sent[address], got, strict=True):
            assert received.replace(b"\r\n", b"\n") == sent.replace(b"\r\n", b"\n")
    secrets = _secrets(host)
    assert_no_secrets(host.data, secrets, min_files=5)  # restored, then drained and read over IMAP
    assert_no_secrets(swift.dir / "srv", secrets, min_files=5)  # every object the backups uploaded


def test_secrets_are_sealed_and_the_wrong_operator_key_opens_nothing(host, swift, tmp_path) -> None:
    host.deliver(ADDRESSES[1], 1)
    host.cli("run")
    s3 = _client(swift)
    env_secret = host.env.read_bytes()
    for entry in _manifest(swift, host)["entries"]:
        body = s3.get_object(Bucket=host.bucket, Key=entry["object"])["Body"].read()
        assert env_secret not in body  # no env file in the clear
        assert b"PRIVATE KEY" not in body  # no PEM key (TLS, DKIM) in the clear
        if entry["secret"] or entry["name"].startswith("data/mailboxes/"):
            assert b"SQLite format 3" not in body  # sealed, or SQLCipher: no readable database
    wrong = tmp_path / "wrong.key"
    wrong.write_text(json.loads(host.cli("init-key", "--json", env_file=tmp_path / "other.env").stdout)["private_key"])
    shutil.rmtree(host.data)
    result = host.cli("restore", "--key-file", str(wrong), check=False)
    assert result.returncode == 1
    assert "does not verify with this operator key" in result.stderr
    assert not (host.data / "config.sqlite").exists()  # nothing was changed


def test_wrong_s3_secret_fails_loudly_and_keeps_the_previous_backup(host, tmp_path) -> None:
    host.cli("run")
    runs_before = host.cli("list", "--json").stdout
    bad_env = tmp_path / "bad.env"
    bad_env.write_text(
        host.env.read_text().replace("SEALMAIL_BACKUP_S3_SECRET_KEY=testing", "SEALMAIL_BACKUP_S3_SECRET_KEY=nope")
    )
    result = host.cli("run", env_file=bad_env, check=False)
    assert result.returncode == 1
    assert "the S3 secret key is wrong" in result.stderr
    assert result.stderr.count("\n") == 1  # one clear line, no traceback
    config = SQLiteConfigStore(host.settings.config_db_path)
    try:
        logged = [e for e in config.query_logs(LogQuery(limit=50)).entries if e.component == "backup"]
    finally:
        config.close()
    assert logged
    assert logged[0].kind == "error"
    assert "secret key is wrong" in logged[0].detail
    assert host.cli("list", "--json").stdout == runs_before
    assert host.cli("verify").returncode == 0
    assert host.cli("run").returncode == 0  # the next run just works


def test_a_missing_bucket_is_a_clear_error(host, tmp_path) -> None:
    gone = tmp_path / "gone.env"
    gone.write_text(
        host.env.read_text().replace(
            f"SEALMAIL_BACKUP_S3_BUCKET={host.bucket}", "SEALMAIL_BACKUP_S3_BUCKET=no-such-bucket"
        )
    )
    result = host.cli("run", env_file=gone, check=False)
    assert result.returncode == 1
    assert "the bucket does not exist" in result.stderr


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_objects_are_found_by_verify_and_refused_by_restore(host, swift, damage) -> None:
    """A truncated object and a corrupted snapshot: verify names them and exits non-zero; restore
    changes nothing; the next run sees the object is not what it uploaded and uploads it again."""
    remi = ADDRESSES[0]
    host.deliver(remi, 2)
    host.drain(remi)
    host.cli("run")
    manifest = _manifest(swift, host)
    box = next(e for e in manifest["entries"] if e["name"] == f"data/mailboxes/{host.mailbox_ids[remi]}.sqlite")
    s3 = _client(swift)
    body = s3.get_object(Bucket=host.bucket, Key=box["object"])["Body"].read()
    broken = body[: len(body) // 2] if damage == "truncate" else body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
    s3.put_object(Bucket=host.bucket, Key=box["object"], Body=broken)

    result = host.cli("verify", check=False)
    assert result.returncode == 1
    assert box["name"] in result.stderr
    assert ("octets" in result.stderr) if damage == "truncate" else ("SHA-256" in result.stderr)

    before = sorted(p.relative_to(host.data) for p in host.data.rglob("*"))
    result = host.cli("restore", "--key-file", str(host.private_key), "--yes", check=False)
    assert result.returncode == 1
    assert "nothing was changed" in result.stderr
    assert "damaged" in result.stderr
    assert sorted(p.relative_to(host.data) for p in host.data.rglob("*")) == before
    again = json.loads(host.cli("run", "--json").stdout)
    assert box["name"] in again["uploaded"]
    assert host.cli("verify").returncode == 0


def test_restore_over_existing_data_asks_and_moves_aside(host) -> None:
    host.deliver(ADDRESSES[1], 1)
    host.cli("run")
    (host.data / "config.sqlite").write_bytes(b"newer data")
    result = host.cli("restore", "--key-file", str(host.private_key), check=False)
    assert result.returncode == 1
    assert "would be replaced" in result.stderr
    assert "--yes" in result.stderr
    assert (host.data / "config.sqlite").read_bytes() == b"newer data"
    done = json.loads(host.cli("restore", "--key-file", str(host.private_key), "--yes", "--json").stdout)
    assert "config.sqlite" in done["moved_aside"]
    (aside,) = host.data.glob("pre-restore-*")
    assert (aside / "config.sqlite").read_bytes() == b"newer data"


def _manifest(swift, host) -> dict:
    s3 = _client(swift)
    keys = sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=host.bucket, Prefix="mail.example.test/runs/")["Contents"]
    )
    return json.loads(json.loads(s3.get_object(Bucket=host.bucket, Key=keys[-1])["Body"].read())["manifest"])


def _latest_key(swift, host) -> str:
    s3 = _client(swift)
    listing = s3.list_objects_v2(Bucket=host.bucket, Prefix="mail.example.test/runs/")["Contents"]
    return sorted(o["Key"] for o in listing)[-1]


def _rewrite_manifest(swift, host, change, *, authentic: bool) -> None:
    """Edit the latest manifest in the bucket, as someone with write access to it would. With
    ``authentic`` the MAC is made again with the real key (what only a host compromise would
    allow): the path checks must hold even then."""
    s3 = _client(swift)
    key = _latest_key(swift, host)
    wrapper = json.loads(s3.get_object(Bucket=host.bucket, Key=key)["Body"].read())
    inner = json.loads(wrapper["manifest"])
    change(inner)
    if authentic:
        manifest_key = backup_keys.derive_manifest_key(backup_keys.read_private_key(host.private_key))
        body = seal_manifest(Manifest.from_json(json.dumps(inner).encode()), manifest_key, "mail.example.test")
    else:
        wrapper["manifest"] = json.dumps(inner)
        body = json.dumps(wrapper).encode()
    s3.put_object(Bucket=host.bucket, Key=key, Body=body)


def _tree(root) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_an_edited_manifest_is_refused_and_nothing_is_written(host, swift) -> None:
    """A manifest changed in the bucket (its MAC no longer matches), and one without a MAC at all,
    are refused before any entry is read."""
    host.cli("run")
    before = _tree(host.data)

    def point_elsewhere(inner) -> None:
        inner["entries"][0]["name"] = "data/config.sqlite.evil"

    _rewrite_manifest(swift, host, point_elsewhere, authentic=False)
    result = host.cli("restore", "--key-file", str(host.private_key), "--yes", check=False)
    assert result.returncode == 1
    assert "is not authentic" in result.stderr
    assert "nothing was changed" in result.stderr
    assert _tree(host.data) == before

    s3 = _client(swift)
    key = _latest_key(swift, host)
    inner = json.loads(s3.get_object(Bucket=host.bucket, Key=key)["Body"].read())["manifest"]
    s3.put_object(Bucket=host.bucket, Key=key, Body=inner.encode())  # the old, MAC-less format
    result = host.cli("restore", "--key-file", str(host.private_key), "--yes", check=False)
    assert result.returncode == 1
    assert "carries no MAC" in result.stderr
    assert _tree(host.data) == before
    # The host itself notices too, and its next run does not build on the bad manifest.
    assert "carries no MAC" in host.cli("verify", check=False).stderr
    assert host.cli("run").returncode == 0
    assert host.cli("verify").returncode == 0


@pytest.mark.parametrize("where", ["file:/etc/x", "outside", "dotdot", "etc-dotdot"])
def test_paths_outside_the_places_a_backup_writes_are_refused(host, swift, tmp_path, where) -> None:
    """Even in an authentic manifest, an entry may only name the data directory, /etc/sealmail, the
    DKIM directory and this host's TLS and env files: never /etc/x, another absolute path or '..'."""
    host.cli("run")
    outside = tmp_path / "elsewhere" / "x"
    name = {
        "file:/etc/x": "file:/etc/x",
        "outside": f"file:{outside}",
        "dotdot": "data/../elsewhere/x",
        "etc-dotdot": "file:/etc/sealmail/../x",
    }[where]
    existed = Path("/etc/x").exists()

    def retarget(inner) -> None:
        inner["entries"][0]["name"] = name

    _rewrite_manifest(swift, host, retarget, authentic=True)
    before = _tree(host.data)
    result = host.cli("restore", "--key-file", str(host.private_key), "--yes", check=False)
    assert result.returncode == 1
    assert "refusing" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not outside.exists()
    assert not (tmp_path / "x").exists()
    assert Path("/etc/x").exists() == existed
    assert _tree(host.data) == before


def test_a_symlinked_directory_on_the_way_is_refused(host, tmp_path) -> None:
    """A directory inside the data directory replaced by a symbolic link (to anywhere) is not
    followed: the restore refuses before writing anything, there or through it."""
    remi = ADDRESSES[0]
    host.deliver(remi, 1)
    host.drain(remi)
    host.cli("run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(host.data / "mailboxes")
    (host.data / "mailboxes").symlink_to(elsewhere)
    (host.data / "config.sqlite").unlink()
    before = _tree(host.data)
    result = host.cli("restore", "--key-file", str(host.private_key), "--yes", check=False)
    assert result.returncode == 1
    assert "symbolic link" in result.stderr
    assert "nothing was changed" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert _tree(host.data) == before


def test_retention_keeps_daily_weekly_and_monthly_runs() -> None:
    runs = [
        f"2026{m:02d}{d:02d}T0{h}0000.000000Z" for m in (6, 7, 8, 9, 10, 11) for d in (1, 9, 17, 25) for h in (1, 5)
    ]
    keep = runs_to_keep(runs, daily=7, weekly=4, monthly=6)
    newest = max(runs)
    assert newest in keep
    days = {r[:8] for r in keep}
    assert all(r.endswith("T050000.000000Z") for r in keep)  # the newest of each kept day
    assert len([d for d in days if d >= "20260901"]) >= 7  # the seven latest days with runs
    assert {r[:6] for r in keep} == {"202606", "202607", "202608", "202609", "202610", "202611"}  # six months
    assert len(keep) < len(runs)
