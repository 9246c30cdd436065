"""A real Redis Sentinel deployment on loopback: a master, a replica and three sentinels (quorum 2).

Debian's ``redis-server`` and ``redis-sentinel``, each started by PID and stopped by PID. The data
nodes and the sentinels have passwords (as the redis role sets them). ``down-after-milliseconds``
is short so a failover takes seconds. With ``tls=True`` every node and sentinel speaks only TLS
(``port 0``, ``tls-port``), replication and the sentinels' own links included, with certificates
from a CA of the test's own (as a deployment's private CA).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from support import free_port, require_tool

MASTER_NAME = "sealmail"
DATA_PASSWORD = "data-secret-for-tests"
SENTINEL_PASSWORD = "sentinel-secret-for-tests"
DOWN_AFTER_MS = 1000


@dataclass
class SentinelCluster:
    workdir: Path
    data_ports: list[int] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    tls: bool = False

    @property
    def ca(self) -> Path:
        return self.workdir / "tls" / "ca.pem"

    @property
    def url(self) -> str:
        """What the app's SEALMAIL_REDIS_URL says in Sentinel mode: credentials, database and TLS only."""
        if self.tls:
            return f"rediss://:{DATA_PASSWORD}@sentinel/0?ssl_ca_certs={self.ca}"
        return f"redis://:{DATA_PASSWORD}@sentinel/0"

    def _tls_client(self) -> dict[str, object]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca)} if self.tls else {}

    def _tls_args(self) -> list[str]:
        tls = self.workdir / "tls"
        return [
            "--tls-cert-file", str(tls / "server.pem"), "--tls-key-file", str(tls / "server.key"),
            "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no", "--tls-replication", "yes",
        ]  # fmt: skip

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.sentinel_ports]

    def settings_update(self) -> dict[str, object]:
        return {
            "redis_url": self.url,
            "redis_sentinels": self.sentinels,
            "redis_sentinel_master": MASTER_NAME,
            "redis_sentinel_password": SENTINEL_PASSWORD,
            "redis_sentinel_tls": self.tls,
        }

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, password=SENTINEL_PASSWORD, socket_timeout=2, **self._tls_client()
        )

    def master_port(self) -> int:
        client = self.sentinel(self.sentinel_ports[0])
        try:
            return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        finally:
            client.close()

    def data(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, password=DATA_PASSWORD, socket_timeout=2, **self._tls_client())

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        proc = self.procs[port]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return port

    def start(self) -> None:
        server = require_tool("redis-server")
        sentinel = require_tool("redis-sentinel")
        master, replica = free_port(), free_port()
        self.data_ports = [master, replica]
        if self.tls:
            from sealmail.tls.devca import ensure_dev_certificates

            ensure_dev_certificates(self.workdir / "tls")  # ca.pem, server.pem (localhost, 127.0.0.1)
        for port in self.data_ports:
            listen = ["--port", "0", "--tls-port", str(port), *self._tls_args()] if self.tls else ["--port", str(port)]
            args = [
                server, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--dbfilename", f"dump-{port}.rdb",
                "--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD,
            ]  # fmt: skip
            if port == replica:
                args += ["--replicaof", "127.0.0.1", str(master)]
            self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: self.data(replica).info("replication").get("master_link_status") == "up", "replica sync")
        for _ in range(3):
            port = free_port()
            conf = self.workdir / f"sentinel-{port}.conf"
            tls = self.workdir / "tls"
            listen = (
                f"port 0\ntls-port {port}\ntls-cert-file {tls / 'server.pem'}\ntls-key-file {tls / 'server.key'}\n"
                f"tls-ca-cert-file {self.ca}\ntls-auth-clients no\ntls-replication yes\n"
                if self.tls
                else f"port {port}\n"
            )
            conf.write_text(
                f"{listen}bind 127.0.0.1\ndir {self.workdir}\nrequirepass {SENTINEL_PASSWORD}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel auth-pass {MASTER_NAME} {DATA_PASSWORD}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self.sentinel_ports.append(port)
            self.procs[port] = subprocess.Popen(
                [sentinel, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        def ready() -> bool:
            # Every sentinel knows the two others and the replica: a failover can be agreed on.
            for port in self.sentinel_ports:
                client = self.sentinel(port)
                try:
                    if len(client.sentinel_sentinels(MASTER_NAME)) < 2:
                        return False
                    if not client.sentinel_slaves(MASTER_NAME):
                        return False
                finally:
                    client.close()
            return True

        self._wait(ready, "sentinels to discover each other", timeout=30)

    def _wait(self, condition, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_cluster(workdir: Path, *, tls: bool = False) -> SentinelCluster:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = SentinelCluster(workdir, tls=tls)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
