"""Issue 19: an MX whose config store is the data host's (``SEALMAIL_CONFIG_BACKEND=store``).

RCPT is checked through the store channel; while the data host is away the MX keeps accepting
for the aliases it knows (``smtp.lastknown``: a lost data host is ``StoreUnavailable``, like any
config-store failure) and answers others with a temporary failure (RFC 5321 §4.2.5 / §4.3.2:
451, the sender tries again), never a permanent one. When the data host is back the next
lookup dials again.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket

import pytest
from storekit import StoreProcess, client_settings, store_certs

from sealmail.services import aliases, credentials, domains
from sealmail.smtp.mx import MxComponent
from sealmail.tls.devca import ensure_dev_certificates

from dnsserver import DnsServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rcpt(port: int, *addresses: str) -> list[int]:
    client = smtplib.SMTP("127.0.0.1", port, timeout=20)
    try:
        client.ehlo("client.example.org")
        client.mail("sender@example.org")
        return [client.rcpt(a)[0] for a in addresses]
    finally:
        client.close()


@pytest.fixture
async def mx_on_data_host_config(sealmail_bin, settings, config, redis_url, tmp_path):
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "demo@example.test")
    aliases.add_alias(config, "other@example.test")
    credentials.set_password(config, settings, "demo@example.test")
    certs = store_certs(tmp_path / "store-tls")
    data_host = StoreProcess(sealmail_bin, settings.data_dir, certs, _free_port(), tmp_path / "store.log", redis_url)
    data_host.start()
    tls = ensure_dev_certificates(tmp_path / "tls")
    dnsd = DnsServer(tmp_path)
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.start()
    front = client_settings(settings, certs, data_host.port).model_copy(
        update={
            "config_backend": "store",
            "data_dir": tmp_path / "front",  # the front-end has no config.sqlite of its own
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "tls_cert_file": tls.cert,
            "tls_key_file": tls.key,
            "hostname": "mx.example.test",
            "mx_processes": 1,
        }
    )
    component = MxComponent(front)
    port = (await component.start())["mx"]
    try:
        yield port, data_host
    finally:
        await component.stop()
        data_host.stop()
        dnsd.stop()
    assert not (tmp_path / "front" / "config.sqlite").exists()


async def test_rcpt_answers_known_aliases_while_the_data_host_is_away(mx_on_data_host_config) -> None:
    port, data_host = mx_on_data_host_config
    codes = await asyncio.to_thread(_rcpt, port, "demo@example.test", "nobody@example.test")
    assert codes == [250, 550]  # looked up through the data host's config store
    data_host.kill()
    codes = await asyncio.to_thread(_rcpt, port, "demo@example.test", "other@example.test")
    assert codes == [250, 451]  # known: accepted from the last answer; never seen: try again later
    data_host.start()
    codes = await asyncio.to_thread(_rcpt, port, "other@example.test", "nobody@example.test")
    assert codes == [450, 550]  # back: other has no mailbox keys yet (450 4.2.0), nobody is unknown
