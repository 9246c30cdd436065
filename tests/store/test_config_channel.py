"""Issue 19: the data host's config store over the store channel (``SEALMAIL_CONFIG_BACKEND=store``).

The front-ends call ``config.<method>`` on the data host's store component over the mutual-TLS
WebSocket (RFC 6455 frames, one JSON text each); only the public ``ConfigStore`` methods are
answered, the config records travel as explicit records (nothing pickled), a lost data host is
``StoreUnavailable`` and the next call dials again. The contract suite itself runs over this channel
too (``tests/contract/test_config_store.py`` with ``SEALMAIL_TEST_STORE=remote``).
"""

from __future__ import annotations

import inspect
import socket
import ssl
from datetime import timedelta

import pytest
from pydantic import ValidationError
from storekit import client_settings, store_certs
from websockets.sync.client import connect

from sealmail.config import open_store, wire
from sealmail.config.base import ConfigStore
from sealmail.config.models import (
    AdminAccount,
    Alias,
    AliasCredential,
    ApiToken,
    DmarcReport,
    DmarcRow,
    Domain,
    LogEntry,
    LogPage,
    LogQuery,
    MailboxHome,
    TlsFailure,
    TlsPolicy,
    TlsReport,
    now,
)
from sealmail.config.remote import RemoteConfigStore
from sealmail.datahost import DataHostComponent
from sealmail.errors import AlreadyExists, NotFound
from sealmail.settings import Settings
from sealmail.store import rpc
from sealmail.store.errors import StoreUnavailable
from sealmail.store.remote import client_tls


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(ConfigStore, inspect.isfunction)
        if not name.startswith("_") and name != "close"
    }


def test_config_methods_are_exactly_the_config_store_contract() -> None:
    """The allowlist is every public ``ConfigStore`` method, and the client answers each itself."""
    assert _public_methods() == wire.CONFIG_METHODS
    for name in wire.CONFIG_METHODS:
        assert name in vars(RemoteConfigStore), f"RemoteConfigStore.{name} would run a local hook"


def test_codec_round_trips_the_config_records() -> None:
    """Every config record, keyword-only fields and bytes included, comes back equal."""
    t = now()
    records = [
        Domain("example.test", "example.test"),
        Alias("example.test", "regex", "/^a.*$/", recipients=["https://hooks.example.test/x"], quota=5),
        AliasCredential(
            "a1", "$argon2id$v=19$hash", "m1", b"\x00pub", b"salt", "argon2id", b"km", b"kp", usage_bytes=7
        ),
        AdminAccount("admin@example.test", "$argon2id$h", recovery_codes=["c1", "c2"], last_login_at=t),
        ApiToken("ci", "f" * 64, scopes=["aliases:read"], revoked_at=t),
        LogEntry("delivery", "mx", "stored", domain="example.test", peer="192.0.2.1", detail="x"),
        LogQuery(kind="error", components=["smtp", "jobs"], since=t, limit=3, cursor="abc"),
        LogPage([LogEntry("audit", "api", "ok")], next_cursor="n"),
        MailboxHome("m1", "data1", t),
        DmarcReport(
            "google.com",
            "r1",
            "example.test",
            t,
            t,
            rows=[DmarcRow("192.0.2.1", 3, "none", "pass", "fail", "example.test", dkim_auth=["example.test=pass"])],
        ),
        TlsReport(
            "google.com",
            "r2",
            t,
            t,
            policies=[TlsPolicy("example.test", "sts", 4, 1, ["mail.example.test"])],
            failures=[TlsFailure("example.test", "certificate-expired", 1, sending_ip="192.0.2.9")],
        ),
    ]
    for record in records:
        assert rpc.loads(rpc.reply_ok(1, record))["ok"] == record
    counts = {(t.date(), "stored"): 3}
    assert rpc.loads(rpc.reply_ok(1, counts))["ok"] == counts
    assert len(rpc.RECORDS) == len(set(rpc.RECORDS.values()))  # no two records share a wire name


def test_store_backend_needs_the_store_url(settings: Settings, tmp_path) -> None:
    with pytest.raises(ValidationError, match="SEALMAIL_STORE_URL"):
        Settings.model_validate({**settings.model_dump(), "config_backend": "store"})
    certs = store_certs(tmp_path / "tls")
    front = client_settings(settings, certs, 1).model_copy(update={"config_backend": "store"})
    store = open_store(front)
    assert isinstance(store, RemoteConfigStore)  # nothing dialled yet
    store.close()


def test_the_data_host_keeps_its_own_config_store(settings: Settings, tmp_path) -> None:
    """The store process serves the config store: it cannot itself be a client of one."""
    certs = store_certs(tmp_path / "tls")
    front = client_settings(settings, certs, 1).model_copy(update={"config_backend": "store"})
    with pytest.raises(ValueError, match="data host serves the config store"):
        DataHostComponent(front)


# ---- a data host in its own process ---------------------------------------------------------------
@pytest.fixture
def remote(data_host, certs):
    tls = client_tls(certs.ca, certs.client_cert, certs.client_key)
    store = RemoteConfigStore(f"wss://localhost:{data_host.port}", tls, timeout=10)
    yield store
    store.close()


def test_config_calls_reach_the_data_hosts_own_store(remote, settings) -> None:
    """What a front-end writes is in the data host's SQLite file; its errors arrive as themselves."""
    from sealmail.config.sqlite import SQLiteConfigStore

    domain = remote.add_domain(Domain("example.test", "example.test"))
    with pytest.raises(AlreadyExists):
        remote.add_domain(Domain("example.test", "example.test"))
    with pytest.raises(NotFound):
        remote.get_alias("nope")
    alias = remote.add_alias(Alias("example.test", "exact", "demo"))
    entry = remote.append_log(LogEntry("delivery", "mx", "stored", domain="example.test"))
    counts = remote.count_logs("delivery", entry.time - timedelta(hours=1), entry.time + timedelta(hours=1))
    assert counts == {(entry.time.date(), "stored"): 1}
    with SQLiteConfigStore(settings.config_db_path) as local:
        assert local.get_domain("example.test") == domain
        assert local.get_alias(alias.id) == alias
    remote.remove_domain("example.test")  # the aliases go with it, in one call on the data host
    assert remote.list_aliases() == []


def test_the_data_host_refuses_calls_outside_the_config_contract(data_host, certs) -> None:
    """Hooks, backend methods and unknown names get an error reply; the connection stays usable."""
    tls = client_tls(certs.ca, certs.client_cert, certs.client_key)
    with connect(f"wss://localhost:{data_host.port}", ssl=tls, proxy=None, compression=None) as ws:
        for n, method in enumerate(["config._insert_domain", "config.close", "config.nope", "config.__init__"], 1):
            ws.send(rpc.request(n, None, method, (), {}))
            reply = rpc.loads(ws.recv(timeout=10))
            assert reply["id"] == n
            assert reply["error"]["type"] == "MethodNotAllowed"
        ws.send(rpc.request(9, None, "config.list_domains", (), {}))
        assert rpc.loads(ws.recv(timeout=10)) == {"id": 9, "ok": []}


def test_a_lost_data_host_is_store_unavailable_and_the_next_call_dials_again(remote, data_host) -> None:
    remote.add_domain(Domain("example.test", "example.test"))
    data_host.kill()
    with pytest.raises(StoreUnavailable):
        remote.list_domains()
    with pytest.raises(StoreUnavailable):
        remote.find_domain("example.test")
    data_host.start()
    assert [d.name for d in remote.list_domains()] == ["example.test"]
    data_host.stop()  # a clean restart between two calls: the first call after it just works
    data_host.start()
    assert remote.find_domain("example.test") is not None


def test_the_data_host_never_logs_what_config_calls_carry(remote, data_host) -> None:
    remote.add_domain(Domain("example.test", "example.test"))
    alias = remote.add_alias(Alias("example.test", "exact", "secret-local-part"))
    verifier = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$SENSITIVEVERIFIER"
    remote.set_credential(AliasCredential(alias.id, verifier, key_mailbox=b"wrapped-key-bytes"))
    with pytest.raises(AlreadyExists):
        remote.add_alias(Alias("example.test", "exact", "secret-local-part"))
    data_host.stop()
    text = data_host.log.read_text()
    for needle in ("SENSITIVEVERIFIER", "secret-local-part", "d3JhcHBlZC1rZXktYnl0ZXM"):
        assert needle not in text


def test_a_client_without_a_deployment_certificate_gets_nothing(data_host, certs, tmp_path) -> None:
    """Mutual TLS: the config store is behind the same client-certificate check as the mailboxes."""
    bare = ssl.create_default_context(cafile=str(certs.ca))
    store = RemoteConfigStore(f"wss://localhost:{data_host.port}", bare, timeout=5)
    with pytest.raises(StoreUnavailable):
        store.list_domains()
    store.close()


def test_a_silent_data_host_costs_one_timeout_not_one_per_caller_then_fails_fast(certs) -> None:
    """A data host that accepts TCP and never answers: threads asking for config at that moment
    (RCPT lookups of several SMTP sessions) wait for one dial and its timeout, not one timeout each
    in turn behind the connection's lock; after it, calls fail at once for a back-off period (the
    MX answers from what it knows, IMAP says NO [UNAVAILABLE]) instead of waiting again."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    tarpit = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never speaks TLS
    store = RemoteConfigStore(
        f"wss://localhost:{tarpit.getsockname()[1]}",
        client_tls(certs.ca, certs.client_cert, certs.client_key),
        timeout=1.0,
    )
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(5) as pool:
            outcomes = [f.exception() for f in [pool.submit(store.list_domains) for _ in range(5)]]
        shared = time.monotonic() - started
        assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
        assert shared < 3.0, f"five waiting callers took {shared:.1f} s: each waited its own timeout"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="trying it again"):
            store.list_domains()
        assert time.monotonic() - started < 0.5
    finally:
        store.close()
        tarpit.close()


def test_every_error_the_channel_carries_decodes_as_itself() -> None:
    """Errors travel by class name: a mailbox over its quota must arrive as the store's quota error
    (IMAP's [OVERQUOTA], DAV's 507), not as another module's class of the same name."""
    from sealmail.store import errors as store_errors

    for name, cls in rpc.ERRORS.items():
        assert name == cls.__name__
        decoded = rpc.error_of({"type": name, "message": "x"})
        assert type(decoded) is cls, name
    assert type(rpc.error_of({"type": "QuotaExceeded", "message": "x"})) is store_errors.QuotaExceeded

    class QuotaExceeded(Exception):  # a second class under a name the channel already carries
        pass

    with pytest.raises(TypeError, match="share a wire name"):
        rpc.register((), (QuotaExceeded,))
