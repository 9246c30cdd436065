"""The MongoDB client the config store opens: replica-set URLs, and the guarantees a config store needs.

No MongoDB server runs on this machine (it cannot be installed here), so these tests build a real
``pymongo.MongoClient`` with ``connect=False`` and read back its options; nothing goes on the wire.
The shared contract (tests/contract) runs the store itself against mongomock, and against a real
server when ``MONGODB_URL`` is set.
"""

from __future__ import annotations

import mongomock
import pytest
from pymongo import ReadPreference
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from sealmail.config.mongodb import MongoConfigStore, open_client

RS_URL = "mongodb://sealmail:secret@db1.example.test,db2.example.test:27018,db3.example.test/?replicaSet=rs0"


def test_replica_set_url_gives_every_member_and_the_set_name() -> None:
    """A replica-set URL (three seeds, ``replicaSet=rs0``) is taken as is: pymongo discovers the primary."""
    client = open_client(RS_URL, connect=False)
    try:
        assert client.options.replica_set_name == "rs0"
        assert set(client.topology_description.server_descriptions()) == {
            ("db1.example.test", 27017),
            ("db2.example.test", 27018),
            ("db3.example.test", 27017),
        }
    finally:
        client.close()


def test_writes_wait_for_a_journaled_majority_and_are_retried() -> None:
    """MongoDB manual, Write Concern: ``w: "majority"`` with ``j: true`` survives a failover;
    retryable writes replay a write once after a primary change (no duplicate, no loss)."""
    client = open_client(RS_URL, connect=False)
    try:
        assert client.write_concern == WriteConcern(w="majority", j=True)
        assert client.options.retry_writes is True
        assert client.options.retry_reads is True
    finally:
        client.close()


def test_reads_are_majority_committed_from_the_primary() -> None:
    """Read-your-writes for a config store: read concern ``majority`` at the primary sees every write
    acknowledged with ``w: "majority"`` and never a write that a failover rolls back."""
    client = open_client(RS_URL, connect=False)
    try:
        assert client.read_concern == ReadConcern("majority")
        assert client.read_preference == ReadPreference.PRIMARY
        assert client.codec_options.tz_aware is True
    finally:
        client.close()


def test_the_guarantees_hold_even_when_the_url_asks_for_less() -> None:
    """``w=1`` or ``readPreference=secondary`` in the URL would give up read-your-writes: ours win."""
    client = open_client(RS_URL + "&w=1&journal=false&readPreference=secondary&retryWrites=false", connect=False)
    try:
        assert client.write_concern == WriteConcern(w="majority", j=True)
        assert client.read_preference == ReadPreference.PRIMARY
        assert client.options.retry_writes is True
    finally:
        client.close()


def test_tls_options_pass_through_the_url(tmp_path) -> None:
    """TLS (CA file, client certificate) travels in the URL: ``tls=true&tlsCAFile=...&tlsCertificateKeyFile=...``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from sealmail.config.models import now

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealmail test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now())
        .not_valid_after(now().replace(year=now().year + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    client_pem = tmp_path / "client.pem"
    client_pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    client = open_client(f"{RS_URL}&tls=true&tlsCAFile={ca}&tlsCertificateKeyFile={client_pem}", connect=False)
    try:
        assert client.options.pool_options._ssl_context is not None
        assert client.options.pool_options._ssl_context.check_hostname is True
    finally:
        client.close()


def test_store_from_url_uses_the_same_client_options(monkeypatch) -> None:
    """``MongoConfigStore(url)`` opens its client through ``open_client`` (one place for the options)."""
    seen: list[str] = []

    def fake_open(url: str, *, connect: bool = True) -> mongomock.MongoClient:
        seen.append(url)
        return mongomock.MongoClient(tz_aware=True)

    monkeypatch.setattr("sealmail.config.mongodb.open_client", fake_open)
    store = MongoConfigStore(RS_URL, "t")
    store.close()
    assert seen == [RS_URL]


def test_a_url_that_is_not_mongodb_is_refused() -> None:
    with pytest.raises(Exception, match="mongodb"):
        open_client("redis://localhost/", connect=False)


def test_srv_url_finds_the_members_and_the_set_in_dns(tmp_path, monkeypatch) -> None:
    """``mongodb+srv://`` (MongoDB's seed list format): the members come from the SRV records
    ``_mongodb._tcp.<host>``, options such as ``replicaSet`` from its TXT record, TLS is on by
    default. Resolved by pymongo against a real DNS server (dnsmasq on loopback)."""
    import dns.resolver

    from dnsserver import DnsServer

    server = DnsServer(tmp_path)
    server.srv("_mongodb._tcp.cluster.example.test", "db1.example.test", 27017)
    server.srv("_mongodb._tcp.cluster.example.test", "db2.example.test", 27018)
    server.txt("cluster.example.test", "replicaSet=rs0&authSource=sealmail")
    server.start()
    try:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = server.port
        monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
        client = open_client("mongodb+srv://sealmail:secret@cluster.example.test/sealmail", connect=False)
        try:
            # What pymongo does on first use (with connect=False it defers the lookup); private API.
            client._resolve_srv()
            assert client.options.replica_set_name == "rs0"
            assert set(client._topology_settings.seeds) == {
                ("db1.example.test", 27017),
                ("db2.example.test", 27018),
            }
            assert client.options.pool_options._ssl_context is not None
            assert client.write_concern == WriteConcern(w="majority", j=True)
            assert client.read_concern == ReadConcern("majority")
        finally:
            client.close()
    finally:
        server.stop()
