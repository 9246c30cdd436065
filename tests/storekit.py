"""The store component for tests: certificates from the dev CA, and the store in its own process.

``store_certs(dir)`` gives the CA, the store's server certificate and a front-end's client
certificate; ``StoreProcess`` runs ``sealmail serve store`` (a real process: tests kill it) on a
fixed loopback port, with its log written to a file the privacy tests scan.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealmail.tls.devca import ensure_client_certificate, ensure_dev_certificates


@dataclass
class StoreCerts:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def store_certs(directory: Path) -> StoreCerts:
    certs = ensure_dev_certificates(directory)
    client_cert, client_key = ensure_client_certificate(directory)
    return StoreCerts(certs.ca_cert, certs.cert, certs.key, client_cert, client_key)


def store_settings(settings: Any, certs: StoreCerts, **extra: Any) -> Any:
    """The store component's settings (a data host): its certificate and the CA it asks clients for."""
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "store_ca_file": certs.ca,
            "store_port": 0,
            "bind_addresses": ["127.0.0.1"],
            **extra,
        }
    )


def client_settings(settings: Any, certs: StoreCerts, port: int) -> Any:
    """A front-end's settings reaching the store at ``port``."""
    return settings.model_copy(
        update={
            "store_url": f"wss://localhost:{port}",
            "store_ca_file": certs.ca,
            "store_client_cert_file": certs.client_cert,
            "store_client_key_file": certs.client_key,
            "store_timeout": 30.0,  # the default: a loaded machine's handshakes can take seconds
        }
    )


class StoreProcess:
    """``sealmail serve store`` in a subprocess on ``port`` (kept across restarts)."""

    def __init__(
        self,
        sealmail_bin: str,
        data_dir: Path,
        certs: StoreCerts,
        port: int,
        log: Path,
        redis_url: str,
        **env: str,
    ):
        self.bin = sealmail_bin
        self.port = port
        self.log = log
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
            "SEALMAIL_DATA_DIR": str(data_dir),
            "SEALMAIL_TLS_CERT_FILE": str(certs.cert),
            "SEALMAIL_TLS_KEY_FILE": str(certs.key),
            "SEALMAIL_STORE_CA_FILE": str(certs.ca),
            "SEALMAIL_STORE_PORT": str(port),
            "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
            "SEALMAIL_REDIS_URL": redis_url,
            **{f"SEALMAIL_{k.upper()}": v for k, v in env.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.bin, "serve", "store"], env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the store exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the store did not start listening")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def remote_mode() -> bool:
    """``SEALMAIL_TEST_STORE=remote``: the protocol suites reach mailboxes through a store component."""
    return os.environ.get("SEALMAIL_TEST_STORE", "local") == "remote"


class StoreThread:
    """The store component on its own event-loop thread in the test process (``support.ComponentThread``)."""

    def __init__(self, settings: Any, tls_dir: Path) -> None:
        from support import ComponentThread

        self.certs = store_certs(tls_dir)
        self.server = ComponentThread("store", store_settings(settings, self.certs))
        self.port = self.server.ports["store"]
        self.stopped = False

    def client_settings(self, settings: Any) -> Any:
        """A front-end of this data host: its mailboxes and its config store through the store channel."""
        return client_settings(settings, self.certs, self.port).model_copy(update={"config_backend": "store"})

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.stop()


class SplitMx:
    """A data host (``sealmail serve store`` in its own process, on the shared data directory) and the
    settings of a front-end MX reaching it: the split-mode MX tests' common ground.

    ``settings`` are the front-end's (its own data directory ``front``, the data host's store URL,
    one MX process, a private DNS server answering for the senders); ``data_settings`` the data
    host's; ``stop`` ends the store and the DNS server."""

    def __init__(
        self, settings: Any, config: Any, redis_url: str, sealmail_bin: str, tmp_path: Path, address: str, **extra: Any
    ) -> None:
        from pydantic import SecretStr

        from sealmail.services import aliases, credentials, domains

        from dnsserver import DnsServer
        from support import free_port

        domains.add_domain(config, address.rsplit("@", 1)[1])
        aliases.add_alias(config, address)
        self.address = address
        self.password = credentials.set_password(config, settings, address)
        self.config = config
        self.data_settings = settings
        self.certs = store_certs(tmp_path / "tls")
        self.store = StoreProcess(
            sealmail_bin, settings.data_dir, self.certs, free_port(), tmp_path / "store.log", redis_url
        )
        self.store.start()
        self.front = tmp_path / "front"
        self.front.mkdir()
        self.dns = DnsServer(tmp_path)
        self.dns.txt("_nothing.example.org", "v=none")
        self.dns.start()
        self.settings = client_settings(settings, self.certs, self.store.port).model_copy(
            update={
                "data_dir": self.front,
                "dns_servers": [self.dns.address],
                "mx_port": 0,
                "bind_addresses": ["127.0.0.1"],
                "hostname": "mx.example.test",
                "mx_processes": 1,
                "mx_auth_workers": 1,
                "redis_url": SecretStr(redis_url),
                "store_timeout": 5.0,
                **extra,
            }
        )

    def remote(self) -> Any:
        """A ``RemoteMailStore`` of the data host, as a front-end reaches it (its client certificate)."""
        from sealmail.store.remote import RemoteMailStore, client_tls

        return RemoteMailStore(
            self.settings.store_url, client_tls(self.certs.ca, self.certs.client_cert, self.certs.client_key)
        )

    def read(self, reader: Any) -> Any:
        """``await reader(handle)`` on the alias's mailbox, opened through the store channel (opening
        drains its spool), and its result."""
        import asyncio

        from sealmail.services import credentials

        unlocked = credentials.unlock(self.config, self.data_settings, self.address, self.password)

        async def go() -> Any:
            store = self.remote()
            try:
                handle = await store.open(unlocked.mailbox_id, unlocked.secrets)
                try:
                    return await reader(handle)
                finally:
                    await handle.release()
            finally:
                await store.close()

        return asyncio.run(go())

    def stop(self) -> None:
        self.store.stop()
        self.dns.stop()
