"""The MongoDB config store in `sealmail backup`: ``mongodump --archive --gzip`` sealed like the other
secrets, and restored with ``mongorestore`` through the same path.

MongoDB cannot be installed on this machine, so ``mongodump`` and ``mongorestore`` are small fake
executables put first on PATH: the boundary the backup really crosses is a subprocess (arguments,
a config file descriptor, stdin and stdout), and that boundary is exercised for real. The fakes
keep the "database" as a file, check they were called the way the real tools are documented to
be called (``--archive`` to stdout/from stdin, ``--gzip``, the URL only in ``--config``) and log
their argument lists. The S3 side is the real Swift server of test_backup.py.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from s3server import SwiftS3, available

from sealmail.backup import keys as backup_keys
from sealmail.backup.manifest import read_unverified

from support import missing

pytestmark = pytest.mark.slow

PASSWORD = "Mongo-Pass-Walnut-7311"
URL = f"mongodb://sealmail:{PASSWORD}@db1.example.test,db2.example.test/sealmail?replicaSet=rs0&tls=true"
# The "database": what the fake mongodump archives and the fake mongorestore writes back.
DOCUMENTS = {"domains": [{"_id": "d1", "name": "example.test", "marker": "Config-Store-Quartz-Heron-42"}]}

FAKE = r'''#!{python}
"""Fake {tool}: checks its arguments like the real one parses them, works on the state file."""
import gzip, json, os, sys
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state = os.environ["FAKE_MONGO_STATE"]
with open(os.environ["FAKE_MONGO_LOG"], "a") as log:
    log.write(json.dumps({{"tool": tool, "args": args}}) + "\n")
if os.environ.get("FAKE_MONGO_FAIL") == tool:
    sys.stderr.write("Failed: server selection error: no reachable servers\n")
    sys.exit(1)
config = [a for a in args if a.startswith("--config=")]
assert len(config) == 1, args
with open(config[0].split("=", 1)[1]) as fh:  # the YAML config: one line, uri: "<url>"
    key, _, value = fh.read().strip().partition(": ")
assert key == "uri" and json.loads(value).startswith("mongodb://"), (key, value)
assert "--archive" in args and "--gzip" in args, args
if tool == "mongodump":
    assert "--db=sealmail" in args, args
    with open(state) as fh:
        sys.stdout.buffer.write(gzip.compress(fh.read().encode(), mtime=0))
else:
    assert "--drop" in args and "--nsInclude=sealmail.*" in args, args
    data = gzip.decompress(sys.stdin.buffer.read()).decode()
    json.loads(data)
    with open(state, "w") as fh:
        fh.write(data)
'''


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


class Fakes:
    def __init__(self, tmp: Path) -> None:
        self.bin = tmp / "fakebin"
        self.bin.mkdir()
        self.state = tmp / "mongo-state.json"
        self.log = tmp / "mongo-calls.jsonl"
        for tool in ("mongodump", "mongorestore"):
            path = self.bin / tool
            path.write_text(FAKE.format(python=sys.executable, tool=tool))
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        self.state.write_text(json.dumps(DOCUMENTS))
        self.log.write_text("")

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def archive(self) -> bytes:
        return gzip.compress(self.state.read_text().encode(), mtime=0)


@pytest.fixture
def fakes(tmp_path, monkeypatch) -> Fakes:
    f = Fakes(tmp_path)
    monkeypatch.setenv("PATH", f"{f.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MONGO_STATE", str(f.state))
    monkeypatch.setenv("FAKE_MONGO_LOG", str(f.log))
    return f


class Host:
    def __init__(self, tmp: Path, swift, sealmail_bin: str) -> None:
        self.swift, self.bin, self.tmp = swift, sealmail_bin, tmp
        self.bucket = f"mongo-{tmp.name.lower().replace('_', '-')[-30:]}"
        with self.s3() as client:
            client.create_bucket(Bucket=self.bucket)
        private, public = backup_keys.new_key_pair()
        self.key_file = tmp / "operator.key"  # kept off the "server" (outside the data dir)
        self.key_file.write_text(private)
        manifest_key = backup_keys.manifest_key_text(backup_keys.read_private_text(private))
        self.data = tmp / "data"
        (self.data / "mailboxes").mkdir(parents=True)
        (self.data / "mailboxes" / "placeholder.txt").write_text("a file of the host's own\n")
        self.settings_lines = [
            f"SEALMAIL_DATA_DIR={self.data}",
            "SEALMAIL_DOMAIN=example.test",
            f"SEALMAIL_BACKUP_S3_ENDPOINT={swift.endpoint}",
            f"SEALMAIL_BACKUP_S3_BUCKET={self.bucket}",
            f"SEALMAIL_BACKUP_S3_ACCESS_KEY={swift.access_key}",
            f"SEALMAIL_BACKUP_S3_SECRET_KEY={swift.secret_key}",
            "SEALMAIL_BACKUP_PREFIX=mx1.example.test",
            f"SEALMAIL_BACKUP_PUBLIC_KEY={public}",
            f"SEALMAIL_BACKUP_MANIFEST_KEY={manifest_key}",
        ]
        self.env = tmp / "sealmail.env"
        self.env.write_text(
            "\n".join([*self.settings_lines, "SEALMAIL_CONFIG_BACKEND=mongodb", f"SEALMAIL_MONGODB_URL='{URL}'"]) + "\n"
        )

    @contextlib.contextmanager
    def s3(self):
        client = boto3.client(
            "s3",
            endpoint_url=self.swift.endpoint,
            region_name=self.swift.region,
            aws_access_key_id=self.swift.access_key,
            aws_secret_access_key=self.swift.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )
        try:
            yield client
        finally:
            client.close()

    def get(self, key: str) -> bytes:
        with self.s3() as client:
            return client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def runs(self) -> list[str]:
        with self.s3() as client:
            found = client.list_objects_v2(Bucket=self.bucket, Prefix="mx1.example.test/runs/")
        return [o["Key"] for o in found.get("Contents", [])]

    def cli(self, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.bin, "backup", *args, "--env-file", str(env_file or self.env)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture
def host(tmp_path, swift, sealmail_bin, clean_env) -> Host:
    return Host(tmp_path, swift, sealmail_bin)


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and needle in path.read_bytes():
                found.append(path)
    return found


def test_the_config_store_is_dumped_with_mongodump_and_sealed(host, fakes, tmp_path) -> None:
    """mongodump --archive --gzip, sealed to the operator key: the bucket holds no clear archive,
    nothing was written in clear on the host, and the URL (with its password) never was an argument."""
    result = host.cli("run", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mongodb:sealmail" in json.loads(result.stdout)["uploaded"]
    [call] = fakes.calls()
    assert call["tool"] == "mongodump"
    assert "--archive" in call["args"]
    assert "--gzip" in call["args"]
    assert not any(PASSWORD in arg or "mongodb://" in arg for arg in call["args"])

    [run_key] = host.runs()
    manifest = read_unverified(host.get(run_key))
    [entry] = [e for e in manifest.entries if e.name == "mongodb:sealmail"]
    assert entry.secret
    blob = host.get(entry.object)
    archive = fakes.archive()
    assert archive not in blob
    assert b"Config-Store-Quartz-Heron" not in blob
    private = backup_keys.read_private_key(host.key_file)
    assert backup_keys.open_secret(private, entry.name, blob) == archive
    # Never in clear at rest: nowhere under the test's directory (data directory and its staging
    # included), the fake's own state file aside (it is the "database").
    assert _files_containing(tmp_path, archive) == []
    verified = host.cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_restore_feeds_the_opened_archive_to_mongorestore(host, fakes) -> None:
    """Restore opens the sealed archive and streams it to ``mongorestore --archive --gzip --drop``
    on stdin: the config store comes back as it was dumped. It replaces the shared config store,
    so it asks for --yes first."""
    assert host.cli("run").returncode == 0
    fakes.state.write_text(json.dumps({"domains": []}))  # the config store lost its data
    refused = host.cli("restore", "--key-file", str(host.key_file), "--mongodb")
    assert refused.returncode != 0
    assert "--yes" in refused.stderr
    assert [c["tool"] for c in fakes.calls()] == ["mongodump"]  # refused before anything ran
    done = host.cli("restore", "--key-file", str(host.key_file), "--yes", "--mongodb", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(fakes.state.read_text()) == DOCUMENTS
    assert [c["tool"] for c in fakes.calls()] == ["mongodump", "mongorestore"]
    assert not any(PASSWORD in arg for arg in fakes.calls()[1]["args"])
    assert json.loads(done.stdout)["files"] >= 2  # the host's file and the config store


def test_without_mongodb_the_shared_config_store_is_left_alone(host, fakes) -> None:
    """Every host's run holds the shared config store; restoring several hosts must not replace it
    once per host with different states. Only ``--mongodb`` (one host) restores it."""
    assert host.cli("run").returncode == 0
    fakes.state.write_text(json.dumps({"domains": []}))
    (host.data / "mailboxes" / "placeholder.txt").unlink()
    done = host.cli("restore", "--key-file", str(host.key_file), "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (host.data / "mailboxes" / "placeholder.txt").read_text() == "a file of the host's own\n"
    assert [c["tool"] for c in fakes.calls()] == ["mongodump"]
    assert json.loads(fakes.state.read_text()) == {"domains": []}
    assert json.loads(done.stdout)["skipped"] == ["mongodb:sealmail"]


def test_a_failing_mongodump_fails_the_run_and_writes_no_manifest(host, fakes, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_MONGO_FAIL", "mongodump")
    result = host.cli("run")
    assert result.returncode != 0
    assert "mongodump failed: " in result.stderr
    assert "no reachable servers" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert host.runs() == []


def test_restoring_a_mongodb_run_needs_the_mongodb_backend(host, fakes, tmp_path) -> None:
    """A run holding the MongoDB config store is not silently restored onto a host set up for SQLite."""
    assert host.cli("run").returncode == 0
    sqlite_env = tmp_path / "sqlite.env"
    sqlite_env.write_text("\n".join(host.settings_lines) + "\n")
    result = host.cli("restore", "--key-file", str(host.key_file), "--yes", "--mongodb", env_file=sqlite_env)
    assert result.returncode != 0
    assert "SEALMAIL_CONFIG_BACKEND=mongodb" in result.stderr
    assert [c["tool"] for c in fakes.calls()] == ["mongodump"]


def test_fake_tools_are_what_the_test_says(fakes) -> None:
    """The fakes refuse a URL on the command line (the real tools would take it: ours must not)."""
    result = subprocess.run(
        [str(fakes.bin / "mongodump"), f"--uri={URL}", "--archive", "--gzip"], capture_output=True, check=False
    )
    assert result.returncode != 0
