"""SCRAM-SHA-1 (which RFC 5804 §2.1 says servers MUST implement) and SCRAM-SHA-256 over ManageSieve,
checked with scramp's client over real sockets: the verifiers stored beside the Argon2id one, the
server proving itself in the SASL code of the OK, and every failure looking the same."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.crypto import scram
from sealmail.services import credentials, scramlogin
from sealmail.services.credentials import AuthenticationFailed

from managesievekit import Wire
from pop3kit import make_account


def _fresh(server, client_context) -> Wire:
    connection = Wire.connect(server)
    assert connection.reply().status == "OK"
    connection.starttls(client_context)
    return connection


def _store(settings) -> SQLiteConfigStore:
    return SQLiteConfigStore(settings.data_dir / "config.sqlite")


def _alias_id(store: SQLiteConfigStore, address: str) -> str:
    name, domain = address.split("@")
    alias = store.find_alias(domain, "exact", name)
    assert alias is not None
    return alias.id


def test_rfc5804_2_1_scram_sha_1_is_offered_after_tls_only(server, client_context) -> None:
    connection = Wire.connect(server)
    greeting = connection.reply()
    assert greeting.capabilities["SASL"] == ""  # §1.7: empty while STARTTLS is still offered
    after = connection.starttls(client_context)
    assert after.capabilities["SASL"].split() == ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    connection.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "empty-challenge"])
def test_rfc5802_3_scram_signs_in_and_the_server_proves_itself(
    server, account, client_context, mechanism, initial
) -> None:
    """RFC 5804 §2.1: the server-final-message comes in the SASL response code of the OK, and the
    client checks its signature (scramp raises if it does not prove knowledge of the verifier)."""
    connection = _fresh(server, client_context)
    answer, _client = connection.scram(mechanism, account.address, account.password, initial=initial)
    assert answer.status == "OK", answer
    assert connection.cmd("LISTSCRIPTS").status == "OK"
    connection.close()


def test_a_wrong_password_and_an_unknown_address_fail_alike(server, account, client_context) -> None:
    """RFC 5802 §9 / RFC 5804 §5: the exchange runs to the proof for an unknown address too (a
    made-up salt, stable across tries), and both end in the same NO; the third failure is BYE."""
    connection = _fresh(server, client_context)
    wrong, _ = connection.scram("SCRAM-SHA-1", account.address, "not the password")
    unknown, _ = connection.scram("SCRAM-SHA-1", "nobody@example.test", "not the password")
    assert (wrong.status, wrong.text) == (unknown.status, unknown.text) == ("NO", "Authentication failed")
    third, _ = connection.scram("SCRAM-SHA-256", "nobody@example.test", "x")
    assert third.status == "BYE"
    connection.close()


def test_a_client_may_cancel_the_exchange_with_a_star(server, account, client_context) -> None:
    """RFC 5804 §2.1: "*" from the client cancels; the server MUST answer NO, and the session goes on."""
    connection = _fresh(server, client_context)
    connection.send(b'AUTHENTICATE "SCRAM-SHA-1"\r\n')
    assert connection.line() == b'""\r\n'
    connection.send(b'"*"\r\n')
    answer = connection.reply()
    assert (answer.status, answer.text) == ("NO", "Authentication cancelled")
    answer, _ = connection.scram("SCRAM-SHA-1", account.address, account.password)
    assert answer.status == "OK"
    connection.close()


def test_a_malformed_client_first_message_is_refused_with_a_clear_no(server, client_context) -> None:
    connection = _fresh(server, client_context)
    for bad in (b"not base64!", base64.b64encode(b"hello"), base64.b64encode(b"n,a=other,n=x,r=abc")):
        answer = connection.cmd(b'AUTHENTICATE "SCRAM-SHA-1" "' + bad + b'"')
        assert answer.status == "NO", answer
        assert answer.text.startswith("Invalid"), answer
    assert connection.cmd("NOOP").status == "OK"
    connection.close()


def test_a_password_change_replaces_the_verifiers(server, sieve_settings, account, client_context) -> None:
    """The old password's SCRAM proof fails at once; the new one's signs in."""
    store = _store(sieve_settings)
    before = store.get_credential(_alias_id(store, account.address))
    new = credentials.set_password(store, sieve_settings, account.address, old_password=account.password)
    after = store.get_credential(before.alias_id)
    assert after.scram
    assert after.scram != before.scram
    connection = _fresh(server, client_context)
    old, _ = connection.scram("SCRAM-SHA-1", account.address, account.password)
    assert old.status == "NO"
    good, _ = connection.scram("SCRAM-SHA-1", account.address, new)
    assert good.status == "OK"
    connection.close()


def test_an_alias_from_before_scram_gets_its_verifiers_at_its_next_plain_login(
    server, sieve_settings, account, client_context
) -> None:
    store = _store(sieve_settings)
    alias_id = _alias_id(store, account.address)
    credential = store.get_credential(alias_id)
    assert store.set_scram_verifiers(alias_id, credential.password_hash, None)
    connection = _fresh(server, client_context)
    refused, _ = connection.scram("SCRAM-SHA-1", account.address, account.password)
    assert refused.status == "NO"  # no verifier yet: the same failure as a wrong password
    assert connection.authenticate(account.address, account.password).status == "OK"
    connection.close()
    assert scram.iterations_of(store.get_credential(alias_id).scram) == sieve_settings.scram_iterations
    connection = _fresh(server, client_context)
    answer, _ = connection.scram("SCRAM-SHA-256", account.address, account.password)
    assert answer.status == "OK"
    connection.close()


def test_verifiers_of_an_old_password_never_land_on_a_new_one(sieve_settings, account) -> None:
    """A login that made verifiers while the password changed must not store them (compare-and-set)."""
    store = _store(sieve_settings)
    alias_id = _alias_id(store, account.address)
    old = store.get_credential(alias_id)
    credentials.set_password(store, sieve_settings, account.address, old_password=account.password)
    stale = scram.make(account.password, 4096)
    assert not store.set_scram_verifiers(alias_id, old.password_hash, stale)
    assert store.get_credential(alias_id).scram != stale


def test_with_scram_off_only_plain_is_offered(serve, account, client_context) -> None:
    server = serve(managesieve_scram=False)
    connection = Wire.connect(server)
    connection.reply()
    assert connection.starttls(client_context).capabilities["SASL"] == "PLAIN"
    answer = connection.cmd('AUTHENTICATE "SCRAM-SHA-1" ""')
    assert (answer.status, answer.text) == ("NO", "Unsupported SASL mechanism SCRAM-SHA-1")
    connection.close()


def test_rfc5802_5_example_exchange(sieve_settings) -> None:
    """RFC 5802 §5's SCRAM-SHA-1 example, byte for byte: user "user", password "pencil", the RFC's
    salt and nonces; the stored verifier made by ``crypto.scram`` from the password answers it."""
    store = _store(sieve_settings)
    account = make_account(sieve_settings, "user@example.test")
    salt = base64.b64decode("QSXCR+Q6sek8bf92")
    made = scram.make("pencil", 4096, salt=salt)
    alias_id = _alias_id(store, account.address)
    assert store.set_scram_verifiers(alias_id, store.get_credential(alias_id).password_hash, made)
    # StoredKey and ServerKey computed here from RFC 5802 §3's definitions, not by the code under test
    salted = hashlib.pbkdf2_hmac("sha1", b"pencil", salt, 4096)
    stored_key = hashlib.sha1(hmac.new(salted, b"Client Key", "sha1").digest()).digest()  # noqa: S324 (the RFC's hash)
    server_key = hmac.new(salted, b"Server Key", "sha1").digest()
    verifier = scram.parse(made)["SCRAM-SHA-1"]
    assert (verifier.stored_key, verifier.server_key, verifier.iterations) == (stored_key, server_key, 4096)

    exchange = scramlogin.Exchange(store, sieve_settings, "SCRAM-SHA-1", nonce="3rfcNHYJY1ZVvWVs7j")
    # the alias's address stands where the RFC has "user"
    first = exchange.first(f"n,,n={account.address},r=fyko+d2lbbFgONRv9qkxdawL")
    assert first == "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    with pytest.raises(AuthenticationFailed):  # the RFC's proof is over "n=user": not this exchange's
        exchange.final("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
