"""The real DAV component (uvicorn + Radicale + the encrypted store) on loopback with the
dev CA's certificate, two aliases with mailboxes, and httpx clients that trust the CA."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from storekit import StoreThread, remote_mode

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.settings import Settings
from sealmail.tls.devca import ensure_dev_certificates


@dataclass
class DavServer:
    settings: Settings
    caldav: str  # https://127.0.0.1:<port>
    carddav: str
    ca_cert: Path
    accounts: dict[str, str]  # address -> password
    component: object
    loop: asyncio.AbstractEventLoop
    store: StoreThread | None = None  # SEALMAIL_TEST_STORE=remote: the mailboxes behind a store component

    def client(self, address: str | None = None, password: str | None = None, base: str | None = None) -> httpx.Client:
        auth = None
        if address is not None:
            auth = (address, password if password is not None else self.accounts[address])
        return httpx.Client(base_url=base or self.caldav, auth=auth, verify=self.ssl_context(), timeout=30)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def principal(self, address: str) -> str:
        from urllib.parse import quote

        return "/" + quote(address) + "/"


def _make_accounts(settings: Settings, addresses: list[str]) -> dict[str, str]:
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        for name in dict.fromkeys(address.rpartition("@")[2] for address in addresses):
            domains.add_domain(store, name)
        result = {}
        for address in addresses:
            aliases.add_alias(store, address, storage=True)
            result[address] = credentials.set_password(store, settings, address)
        return result
    finally:
        store.close()


def start_server(tmp_path: Path, *, remote: bool | None = None, **overrides: object) -> Iterator[DavServer]:
    """The DAV component; with ``remote`` (default: ``SEALMAIL_TEST_STORE=remote``) it reaches the
    mailboxes only through a store component, which also creates the accounts' mailboxes."""
    from sealmail.dav.component import DavComponent

    certs = ensure_dev_certificates(tmp_path / "tls")
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "bind_addresses": ["127.0.0.1"],
        "caldav_port": 0,
        "carddav_port": 0,
        "tls_cert_file": certs.cert,
        "tls_key_file": certs.key,
    }
    values.update(overrides)
    settings = Settings(**values)
    store = StoreThread(settings, tmp_path / "tls") if (remote_mode() if remote is None else remote) else None
    if store is not None:
        settings = store.client_settings(settings)
    accounts = _make_accounts(settings, ["alice@example.test", "bob@example.test", "rémi@universitéxyz.fr"])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dav-test-loop", daemon=True)
    thread.start()
    component = DavComponent(settings)
    ports = asyncio.run_coroutine_threadsafe(component.start(), loop).result(60)
    scheme = "http" if settings.tls_cert_file is None else "https"
    server = DavServer(
        settings,
        f"{scheme}://127.0.0.1:{ports['caldav']}",
        f"{scheme}://127.0.0.1:{ports['carddav']}",
        certs.ca_cert,
        accounts,
        component,
        loop,
        store,
    )
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(component.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        if store is not None:
            store.stop()
