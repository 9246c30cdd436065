"""A private S3-compatible server for tests: OpenStack Swift (Debian) with the s3api middleware.

    with SwiftS3(tmp_path) as s3:
        boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, ...)

Everything runs as the current user on free loopback ports in ``workdir``: a memcached (Swift's
``cache`` middleware needs one), one-replica account/container/object rings built with
``swift-ring-builder``, the three storage servers and the proxy with ``s3api`` + ``tempauth``
(user ``test:tester``, key ``testing``). Swift reads ``/etc/swift/swift.conf`` for its hash path
salts; Debian's ``swift`` package installs that file. Packages: swift swift-proxy swift-account
swift-container swift-object memcached (``scripts/system-deps test``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from support import free_port

NEEDS = ("swift-ring-builder", "swift-proxy-server", "swift-object-server", "memcached")


def available() -> bool:
    return all(shutil.which(n) for n in NEEDS) and Path("/etc/swift/swift.conf").exists()


_STORAGE = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
devices = {devices}
mount_check = false
swift_dir = {swift_dir}
workers = 0
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""

_PROXY = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
swift_dir = {swift_dir}
workers = 0
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
"""


class SwiftS3:
    access_key = "test:tester"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "swift"
        self.procs: list[subprocess.Popen] = []
        self.port = free_port()
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SwiftS3:
        d = self.dir
        (d / "srv" / "d1").mkdir(parents=True)
        log = self._log = (d / "swift.log").open("ab")
        memcached = free_port()
        args = ["memcached", "-l", "127.0.0.1", "-p", str(memcached), "-U", "0", "-m", "16"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self._spawn(args, log)
        ports = {}
        for kind in ("account", "container", "object"):
            ports[kind] = free_port()
            builder = str(d / f"{kind}.builder")
            for step in (
                ["create", "6", "1", "1"],
                ["add", f"r1z1-127.0.0.1:{ports[kind]}/d1", "100"],
                ["rebalance"],
            ):
                subprocess.run(["swift-ring-builder", builder, *step], check=False, capture_output=True)
            if not (d / f"{kind}.ring.gz").exists():
                raise RuntimeError(f"swift-ring-builder did not make {kind}.ring.gz")
            conf = d / f"{kind}-server.conf"
            conf.write_text(_STORAGE.format(port=ports[kind], devices=d / "srv", swift_dir=d, kind=kind))
        proxy = d / "proxy-server.conf"
        proxy.write_text(_PROXY.format(port=self.port, swift_dir=d, memcached=memcached))
        for kind in ("account", "container", "object"):
            self._spawn([f"swift-{kind}-server", str(d / f"{kind}-server.conf")], log)
        self._spawn(["swift-proxy-server", str(proxy)], log)
        for port in (memcached, *ports.values(), self.port):
            self._wait(port)
        return self

    def _spawn(self, args: list[str], log) -> None:
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} did not open: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        path = self.dir / "swift.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SwiftS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
