"""SMTP fixtures: the store's config fixture, and an MX on a free port."""

from __future__ import annotations

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.smtp.mx import MxComponent
from sealmail.tls.devca import ensure_dev_certificates

from dnsserver import DnsServer


@pytest.fixture
def config(settings):
    store = SQLiteConfigStore(settings.config_db_path)
    yield store
    store.close()


@pytest.fixture
def mx_overrides() -> dict:
    """Settings a test module changes for its MX (override this fixture in the module)."""
    return {}


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
async def mx(request, settings, config, tmp_path, mx_overrides):
    """An MX on a free port with TLS, hosting example.test and universitéxyz.fr.

    Every test runs against one process and against two session processes behind one listening
    socket (``mx_processes``): the protocol, the limits and what is stored must not differ. A test
    that is about the processes themselves asks for two (``indirect`` parametrization).
    """
    certs = ensure_dev_certificates(tmp_path / "tls")
    dnsd = DnsServer(tmp_path)  # a real, empty DNS: senders here publish no SPF/DKIM/DMARC
    dnsd.txt("_nothing.example.org", "v=none")
    dnsd.start()
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "bind_addresses": ["127.0.0.1", "::1"],  # both families, one port
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "hostname": "mx.example.test",
            "max_message_size": 200_000,
            "mx_max_connections_per_ip": 3,
            "mx_max_errors": 8,
            "mx_processes": request.param,
            "mx_auth_workers": 1,
            **mx_overrides,
        }
    )
    domains.add_domain(config, "example.test")
    domains.add_domain(config, "universitéxyz.fr")
    aliases.add_alias(config, "demo@example.test")
    aliases.add_alias(config, "rémi@universitéxyz.fr")
    aliases.add_alias(config, "tiny@example.test", quota=1000)
    aliases.add_alias(config, "off@example.test", enabled=False, disabled_reply="reject")
    aliases.add_alias(config, "later@example.test", enabled=False, disabled_reply="defer")
    aliases.add_alias(config, "quiet@example.test", enabled=False, disabled_reply="drop")
    aliases.add_alias(config, "nokeys@example.test")
    aliases.add_alias(config, "/^sales-.*$/@example.test", recipients=["https://hooks.example.test/sales"])
    passwords = {
        a: credentials.set_password(config, settings, a)
        for a in ("demo@example.test", "rémi@universitéxyz.fr", "tiny@example.test")
    }
    component = MxComponent(settings)
    port = (await component.start())["mx"]

    class Server:
        pass

    srv = Server()
    srv.port, srv.settings, srv.passwords, srv.ca = port, settings, passwords, str(certs.ca_cert)
    srv.component = component
    srv.dns = dnsd  # the MX's resolver: a test may add records and restart it (same port)
    yield srv
    await component.stop()
    dnsd.stop()
