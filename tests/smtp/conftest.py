"""SMTP fixtures: the store's config fixture, an MX and a submission server on free ports."""

from __future__ import annotations

import ssl

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services import aliases, credentials, domains
from sealmail.smtp.mx import MxComponent
from sealmail.smtp.submission import SubmissionComponent
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


@pytest.fixture
def sub_overrides() -> dict:
    """Settings a test module changes for its submission server (override this fixture in the module)."""
    return {}


@pytest.fixture
async def sub(settings, config, tmp_path, sub_overrides):
    """Submission on free ports (465-style implicit TLS and 587-style STARTTLS) for example.test and
    universitéxyz.fr, with alice@ and rémi@ signed in by the passwords in ``passwords``."""
    certs = ensure_dev_certificates(tmp_path / "tls")
    settings = settings.model_copy(
        update={
            "submission_port": 0,
            "submission_tls_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "hostname": "mail.example.test",
            **sub_overrides,
        }
    )
    domains.add_domain(config, "example.test", settings)
    domains.add_domain(config, "universitéxyz.fr", settings)
    aliases.add_alias(config, "alice@example.test", recipients=["elsewhere@example.org"])
    aliases.add_alias(config, "rémi@universitéxyz.fr", recipients=["elsewhere@example.org"])
    passwords = {
        "alice@example.test": credentials.set_password(config, settings, "alice@example.test"),
        "rémi@universitéxyz.fr": credentials.set_password(config, settings, "rémi@universitéxyz.fr"),
    }
    component = SubmissionComponent(settings)
    ports = await component.start()

    class Server:
        pass

    srv = Server()
    srv.settings, srv.passwords, srv.ca = settings, passwords, str(certs.ca_cert)
    srv.tls_port, srv.starttls_port = ports["submission_tls"], ports["submission"]
    srv.context = ssl.create_default_context(cafile=srv.ca)
    srv.component = component
    yield srv
    await component.stop()
