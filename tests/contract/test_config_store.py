"""One contract for every config-store backend.

Runs against SQLite (a real file), MongoDB through mongomock, and a real MongoDB server whenever
``MONGODB_URL`` is set (each run uses a fresh database that is dropped afterwards). With
``SEALMAIL_TEST_STORE=remote`` (``make test-remote-store``) also against ``RemoteConfigStore``:
the data host's config store (its SQLite file) reached over the mutual-TLS store channel of a real
``sealmail serve store`` process, one fresh data host per test.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import replace
from datetime import timedelta

import pytest
from storekit import StoreProcess, remote_mode, store_certs

from sealmail.config.base import ConfigStore
from sealmail.config.models import (
    MAX_REPORT_ROWS,
    MAX_SIEVE_SCRIPT_BYTES,
    MAX_SIEVE_SCRIPTS,
    AdminAccount,
    Alias,
    AliasCredential,
    ApiToken,
    DkimKeyRecord,
    DmarcReport,
    DmarcRow,
    Domain,
    LogEntry,
    LogQuery,
    SpamCounts,
    TlsFailure,
    TlsPolicy,
    TlsReport,
    now,
)
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, ScriptActive, ScriptTooLarge, TooManyScripts
from sealmail.sieve.compile import MAX_SCRIPT_BYTES

BACKENDS = ["sqlite", "mongomock"]
if os.environ.get("MONGODB_URL"):
    BACKENDS.append("mongodb")
if remote_mode():
    BACKENDS.append("store")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path):
    if request.param == "sqlite":
        from sealmail.config.sqlite import SQLiteConfigStore

        s: ConfigStore = SQLiteConfigStore(tmp_path / "config.sqlite")
        yield s
        s.close()
    elif request.param == "mongomock":
        from serialmongomock import SerialMongoClient

        from sealmail.config.mongodb import MongoConfigStore

        yield MongoConfigStore(client=SerialMongoClient(tz_aware=True), database="sealmail_test")
    elif request.param == "store":
        yield from _data_host_store(request, tmp_path)
    else:
        import pymongo

        from sealmail.config.mongodb import MongoConfigStore

        name = f"sealmail_test_{secrets.token_hex(4)}"
        client = pymongo.MongoClient(os.environ["MONGODB_URL"], tz_aware=True)
        try:
            yield MongoConfigStore(client=client, database=name)
        finally:
            client.drop_database(name)
            client.close()


def _data_host_store(request: pytest.FixtureRequest, tmp_path):
    from sealmail.config.remote import RemoteConfigStore
    from sealmail.store.remote import client_tls

    certs = store_certs(tmp_path / "tls")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    data_host = StoreProcess(
        request.getfixturevalue("sealmail_bin"),
        tmp_path / "data",
        certs,
        port,
        tmp_path / "store.log",
        request.getfixturevalue("redis_url"),
    )
    data_host.start()
    store = RemoteConfigStore(
        f"wss://localhost:{port}", client_tls(certs.ca, certs.client_cert, certs.client_key), timeout=10
    )
    try:
        yield store
    finally:
        store.close()
        data_host.stop()


def _domain(store: ConfigStore, name: str = "example.test") -> Domain:
    return store.add_domain(Domain(name=name, unicode_name=name))


def test_schema_is_current(store: ConfigStore) -> None:
    assert store.schema_version() >= 1


# ---- domains --------------------------------------------------------------------------------------


def test_domain_round_trip(store: ConfigStore) -> None:
    added = store.add_domain(Domain(name="xn--universitxyz-jeb.fr", unicode_name="universitéxyz.fr"))
    found = store.get_domain("xn--universitxyz-jeb.fr")
    assert found == added
    assert found.created_at.tzinfo is not None
    assert store.find_domain("universitéxyz.fr") is None  # the key is the ASCII form; services normalise


def test_duplicate_domain_is_refused(store: ConfigStore) -> None:
    _domain(store)
    with pytest.raises(AlreadyExists):
        _domain(store)


def test_domains_are_listed_by_name(store: ConfigStore) -> None:
    for name in ("b.test", "a.test", "c.test"):
        _domain(store, name)
    assert [d.name for d in store.list_domains()] == ["a.test", "b.test", "c.test"]


def test_spam_thresholds_are_stored_changed_and_cleared(store: ConfigStore) -> None:
    """A domain's own thresholds (issue 21): set, read back, changed, cleared (None: rspamd decides)."""
    domain = _domain(store)
    assert (domain.spam_reject, domain.spam_defer, domain.spam_junk) == (None, None, None)
    store.update_domain(replace(domain, spam_reject=12.5, spam_junk=4))
    found = store.get_domain("example.test")
    assert (found.spam_reject, found.spam_defer, found.spam_junk) == (12.5, None, 4)
    assert (found.id, found.created_at, found.unicode_name) == (domain.id, domain.created_at, domain.unicode_name)
    store.update_domain(replace(found, spam_reject=None, spam_defer=9.0))
    found = store.get_domain("example.test")
    assert (found.spam_reject, found.spam_defer, found.spam_junk) == (None, 9.0, 4)
    assert [d.spam_defer for d in store.list_domains()] == [9.0]


@pytest.mark.parametrize(
    ("reject", "defer", "junk", "says"),
    [
        (5.0, None, 5.0, "reject threshold (5) must be above the junk threshold (5)"),
        (None, 4.0, 6.0, "defer threshold (4) must be above the junk threshold (6)"),
        (8.0, 9.0, None, "reject threshold (8) must be above the defer threshold (9)"),
        (float("nan"), None, None, "reject threshold must be a number"),
        (float("inf"), None, None, "reject threshold must be a number"),
        (None, None, 0.0, "junk threshold must be above 0"),
        (None, None, -3.0, "junk threshold must be above 0"),
        (1000.5, None, None, "at most 1000"),
    ],
)
def test_bad_spam_thresholds_are_refused_and_nothing_changes(store: ConfigStore, reject, defer, junk, says) -> None:
    domain = store.update_domain(replace(_domain(store), spam_junk=3.0))
    with pytest.raises(InvalidInput, match=re.escape(says)):
        store.update_domain(replace(domain, spam_reject=reject, spam_defer=defer, spam_junk=junk))
    assert store.get_domain("example.test") == domain


def test_thresholds_of_a_domain_not_hosted(store: ConfigStore) -> None:
    with pytest.raises(NotFound):
        store.update_domain(Domain(name="nope.test", unicode_name="nope.test", spam_reject=9.0))
    assert store.find_domain("nope.test") is None


def test_unknown_domain(store: ConfigStore) -> None:
    assert store.find_domain("nope.test") is None
    with pytest.raises(NotFound):
        store.get_domain("nope.test")
    with pytest.raises(NotFound):
        store.remove_domain("nope.test")


def test_removing_a_domain_removes_its_aliases_and_credentials(store: ConfigStore) -> None:
    _domain(store, "a.test")
    _domain(store, "b.test")
    gone = store.add_alias(Alias(domain="a.test", kind="exact", name="x", storage=True))
    kept = store.add_alias(Alias(domain="b.test", kind="exact", name="x", storage=True))
    store.set_credential(AliasCredential(alias_id=gone.id, password_hash="$argon2id$gone"))
    store.set_credential(AliasCredential(alias_id=kept.id, password_hash="$argon2id$kept"))
    store.remove_domain("a.test")
    assert store.find_domain("a.test") is None
    assert store.list_aliases() == [kept]
    assert store.get_credential(gone.id) is None
    assert store.get_credential(kept.id) is not None


# ---- aliases --------------------------------------------------------------------------------------


def test_alias_round_trip_keeps_every_field(store: ConfigStore) -> None:
    _domain(store)
    alias = Alias(
        domain="example.test",
        kind="exact",
        name="rémi",
        recipients=["bob@example.com", "https://hooks.example.com/in"],
        storage=True,
        enabled=False,
        disabled_reply="defer",
        quota=5 * 1024**3,
        description="Rémi's mailbox",
        sending_blocked=True,
    )
    store.add_alias(alias)
    assert store.get_alias(alias.id) == alias
    assert store.find_alias("example.test", "exact", "rémi") == alias


def test_alias_needs_a_hosted_domain(store: ConfigStore) -> None:
    with pytest.raises(NotFound):
        store.add_alias(Alias(domain="nope.test", kind="exact", name="x", storage=True))


def test_alias_names_are_unique_per_domain_and_kind(store: ConfigStore) -> None:
    _domain(store, "a.test")
    _domain(store, "b.test")
    store.add_alias(Alias(domain="a.test", kind="exact", name="x", storage=True))
    store.add_alias(Alias(domain="b.test", kind="exact", name="x", storage=True))
    with pytest.raises(AlreadyExists):
        store.add_alias(Alias(domain="a.test", kind="exact", name="x", storage=True))


def test_aliases_are_listed_per_domain(store: ConfigStore) -> None:
    _domain(store, "a.test")
    _domain(store, "b.test")
    for domain, name in [("b.test", "z"), ("a.test", "y"), ("a.test", "x")]:
        store.add_alias(Alias(domain=domain, kind="exact", name=name, storage=True))
    assert [(a.domain, a.name) for a in store.list_aliases()] == [("a.test", "x"), ("a.test", "y"), ("b.test", "z")]
    assert [a.name for a in store.list_aliases("a.test")] == ["x", "y"]
    assert store.list_aliases("c.test") == []


def test_pattern_aliases_come_oldest_first(store: ConfigStore) -> None:
    _domain(store)
    start = now()
    made = []
    for i, (kind, name) in enumerate([("regex", "/^b/"), ("catchall", "*"), ("regex", "/^a/")]):
        alias = Alias(domain="example.test", kind=kind, name=name, recipients=["x@y.test"])
        alias.created_at = start + timedelta(seconds=i)
        made.append(store.add_alias(alias))
    store.add_alias(Alias(domain="example.test", kind="exact", name="plain", storage=True))
    assert store.list_pattern_aliases("example.test") == made


def test_update_alias(store: ConfigStore) -> None:
    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    changed = store.update_alias(replace(alias, enabled=False, recipients=["a@b.test"], quota=None))
    assert changed.updated_at >= alias.updated_at
    assert store.get_alias(alias.id) == changed
    assert changed.enabled is False
    assert changed.recipients == ["a@b.test"]
    with pytest.raises(NotFound):
        store.update_alias(Alias(domain="example.test", kind="exact", name="ghost"))


def test_remove_alias(store: ConfigStore) -> None:
    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$argon2id$x"))
    store.remove_alias(alias.id)
    assert store.find_alias("example.test", "exact", "x") is None
    assert store.get_credential(alias.id) is None
    with pytest.raises(NotFound):
        store.remove_alias(alias.id)
    with pytest.raises(NotFound):
        store.get_alias(alias.id)


# ---- credentials ----------------------------------------------------------------------------------


def test_credentials(store: ConfigStore) -> None:
    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    assert store.get_credential(alias.id) is None
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$argon2id$one"))
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$argon2id$two"))
    credential = store.get_credential(alias.id)
    assert credential is not None
    assert credential.password_hash == "$argon2id$two"
    store.remove_credential(alias.id)
    assert store.get_credential(alias.id) is None
    with pytest.raises(NotFound):
        store.set_credential(AliasCredential(alias_id="0" * 24, password_hash="$argon2id$x"))


def test_claim_mailbox_is_a_compare_and_set(store: ConfigStore) -> None:
    """Issue 16: two first sign-ins at once each make a mailbox; exactly one claim may win."""
    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    assert not store.claim_mailbox(AliasCredential(alias_id=alias.id, password_hash="$h", mailbox_id="a" * 24))
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$h"))

    def mailbox(letter: str, verifier: str = "$h") -> AliasCredential:
        return AliasCredential(
            alias_id=alias.id,
            password_hash=verifier,
            mailbox_id=letter * 24,
            public_key=letter.encode() * 32,
            key_salt=b"\x00" * 16,
            key_kdf="argon2id:t=1,m=8192,p=1",
            key_mailbox=letter.encode() * 60,
            key_private=letter.encode() * 60,
        )

    assert not store.claim_mailbox(mailbox("b", "$changed"))  # the password changed meanwhile: no
    winner = mailbox("c")
    assert store.claim_mailbox(winner)
    assert not store.claim_mailbox(mailbox("d"))  # the second claim loses...
    assert store.get_credential(alias.id) == winner  # ...and changes nothing


def test_a_recovery_code_is_consumed_once(store: ConfigStore) -> None:
    """Issue 16: spending a recovery code is one atomic step; the second spender gets None."""
    admin = store.add_admin(AdminAccount(email="a@example.test", password_hash="$h", recovery_codes=["h1", "h2", "h3"]))
    assert store.consume_recovery_code(admin.id, "h2") == 2
    assert store.consume_recovery_code(admin.id, "h2") is None
    assert store.consume_recovery_code(admin.id, "nope") is None
    assert store.consume_recovery_code("0" * 24, "h1") is None
    assert store.get_admin(admin.id).recovery_codes == ["h1", "h3"]
    assert store.consume_recovery_code(admin.id, "h1") == 1
    assert store.consume_recovery_code(admin.id, "h3") == 0
    assert store.get_admin(admin.id).recovery_codes == []


def test_credentials_keep_wrapped_keys(store: ConfigStore) -> None:
    _domain(store)
    first = store.add_alias(Alias(domain="example.test", kind="exact", name="a", storage=True))
    second = store.add_alias(Alias(domain="example.test", kind="exact", name="b", storage=True))
    third = store.add_alias(Alias(domain="example.test", kind="exact", name="c", storage=True))
    credential = AliasCredential(
        alias_id=first.id,
        password_hash="$argon2id$a",
        mailbox_id="f" * 24,
        public_key=bytes(range(32)),
        key_salt=b"\x00" * 16,
        key_kdf="argon2id:t=3,m=32768,p=1",
        key_mailbox=b"\x01\xff" * 30,
        key_private=b"\x02\x00" * 30,
        recovery_salt=b"\x03" * 16,
        recovery_mailbox=b"\x04" * 60,
        recovery_private=b"\x05" * 60,
    )
    store.set_credential(credential)
    assert store.get_credential(first.id) == credential
    assert credential.has_keys
    # Aliases without keys do not collide on the (unset) mailbox id; two mailboxes never share one.
    store.set_credential(AliasCredential(alias_id=second.id, password_hash="$argon2id$b"))
    store.set_credential(AliasCredential(alias_id=third.id, password_hash="$argon2id$c"))
    assert not store.get_credential(second.id).has_keys
    store.record_usage(first.id, 12345)
    assert store.get_credential(first.id).usage_bytes == 12345
    assert store.get_credential(first.id).key_mailbox == credential.key_mailbox
    with pytest.raises(AlreadyExists):
        store.set_credential(AliasCredential(alias_id=second.id, password_hash="$argon2id$b", mailbox_id="f" * 24))


def test_recording_usage_changes_nothing_else(store: ConfigStore) -> None:
    """A session that closes records the mailbox's size; a password changed meanwhile must stay
    changed (a read-modify-write of the whole credential would put the old verifier back)."""
    import threading

    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$argon2id$0"))
    done = threading.Event()

    def sessions_closing() -> None:
        n = 0
        while not done.is_set():
            n += 1
            store.record_usage(alias.id, n)

    closer = threading.Thread(target=sessions_closing)
    closer.start()
    try:
        for i in range(1, 150):
            current = store.get_credential(alias.id)
            store.set_credential(replace(current, password_hash=f"$argon2id${i}"))
            assert store.get_credential(alias.id).password_hash == f"$argon2id${i}"
    finally:
        done.set()
        closer.join()
    assert store.get_credential(alias.id).password_hash == "$argon2id$149"
    store.record_usage("0" * 24, 1)  # an alias without a credential: nothing to record, no error


def test_an_alias_totp_secret_is_kept_wrapped_and_only_changed_alone(store: ConfigStore) -> None:
    _domain(store)
    alias = store.add_alias(Alias(domain="example.test", kind="exact", name="x", storage=True))
    with pytest.raises(NotFound):
        store.set_alias_totp(alias.id, b"\x01" * 40)  # no credential yet
    store.set_credential(AliasCredential(alias_id=alias.id, password_hash="$argon2id$a", usage_bytes=7))
    store.set_alias_totp(alias.id, b"\x01\x00" * 20)
    found = store.get_credential(alias.id)
    assert found.totp_secret == b"\x01\x00" * 20
    assert (found.password_hash, found.usage_bytes) == ("$argon2id$a", 7)
    store.set_credential(replace(found, password_hash="$argon2id$b"))  # a password change keeps it
    assert store.get_credential(alias.id).totp_secret == b"\x01\x00" * 20
    store.set_alias_totp(alias.id, None)
    assert store.get_credential(alias.id).totp_secret is None
    assert store.get_credential(alias.id).password_hash == "$argon2id$b"


# ---- admin accounts -------------------------------------------------------------------------------


def test_admin_accounts(store: ConfigStore) -> None:
    admin = store.add_admin(AdminAccount(email="root@example.test", password_hash="$argon2id$a"))
    with pytest.raises(AlreadyExists):
        store.add_admin(AdminAccount(email="root@example.test", password_hash="$argon2id$b"))
    assert store.find_admin("root@example.test") == admin
    assert store.get_admin(admin.id) == admin
    updated = store.update_admin(
        replace(admin, totp_secret="JBSWY3DPEHPK3PXP", recovery_codes=["h1", "h2"], last_login_at=now())
    )
    assert store.get_admin(admin.id) == updated
    store.add_admin(AdminAccount(email="another@example.test", password_hash="$argon2id$c"))
    assert [a.email for a in store.list_admins()] == ["another@example.test", "root@example.test"]
    store.remove_admin(admin.id)
    assert store.find_admin("root@example.test") is None
    with pytest.raises(NotFound):
        store.remove_admin(admin.id)
    with pytest.raises(NotFound):
        store.update_admin(admin)


# ---- API tokens -----------------------------------------------------------------------------------


def test_api_tokens(store: ConfigStore) -> None:
    first = store.add_token(ApiToken(name="ci", token_hash="a" * 64, scopes=["domains:read"]))
    with pytest.raises(AlreadyExists):
        store.add_token(ApiToken(name="dup", token_hash="a" * 64))
    second = ApiToken(name="ops", token_hash="b" * 64, scopes=["*"])
    second.created_at = first.created_at + timedelta(seconds=1)
    store.add_token(second)
    assert store.find_token_by_hash("a" * 64) == first
    assert store.find_token_by_hash("c" * 64) is None
    assert store.list_tokens() == [first, second]
    revoked = store.revoke_token(first.id)
    assert revoked.revoked_at is not None
    assert store.get_token(first.id).revoked_at == revoked.revoked_at
    assert store.revoke_token(first.id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFound):
        store.revoke_token("0" * 24)


def test_alias_tokens_are_listed_per_alias_and_revoked_with_it(store: ConfigStore) -> None:
    _domain(store)
    alice = store.add_alias(Alias(domain="example.test", kind="exact", name="alice", storage=True))
    bob = store.add_alias(Alias(domain="example.test", kind="exact", name="bob", storage=True))
    admin = store.add_token(ApiToken(name="ci", token_hash="a" * 64, scopes=["domains:read"]))
    assert admin.alias_id is None
    mine = store.add_token(ApiToken(name="phone", token_hash="b" * 64, scopes=["account"], alias_id=alice.id))
    theirs = store.add_token(ApiToken(name="laptop", token_hash="c" * 64, scopes=["account"], alias_id=bob.id))
    assert store.find_token_by_hash("b" * 64) == mine
    assert store.list_alias_tokens(alice.id) == [mine]
    assert store.list_alias_tokens(bob.id) == [theirs]
    assert {t.id for t in store.list_tokens()} == {admin.id, mine.id, theirs.id}
    store.remove_alias(alice.id)
    assert store.get_token(mine.id).revoked_at is not None  # an alias's tokens end with it
    store.remove_domain("example.test")
    assert store.get_token(theirs.id).revoked_at is not None
    assert store.get_token(admin.id).revoked_at is None


# ---- logs -----------------------------------------------------------------------------------------


def _log(store: ConfigStore, i: int, base, **fields) -> LogEntry:
    entry = LogEntry(
        kind=fields.pop("kind", "delivery"), component="mx", status=fields.pop("status", "stored"), **fields
    )
    entry.time = base + timedelta(seconds=i)
    return store.append_log(entry)


def test_logs_newest_first_with_filters(store: ConfigStore) -> None:
    base = now()
    _log(store, 0, base, domain="a.test", address="x@a.test")
    _log(store, 1, base, kind="error", status="failed", domain="b.test", detail="DNS timeout")
    _log(store, 2, base, domain="a.test", address="y@a.test", status="forwarded")
    page = store.query_logs(LogQuery())
    assert [e.time for e in page.entries] == [base + timedelta(seconds=s) for s in (2, 1, 0)]
    assert page.next_cursor is None
    assert [e.detail for e in store.query_logs(LogQuery(kind="error")).entries] == ["DNS timeout"]
    assert len(store.query_logs(LogQuery(domain="a.test")).entries) == 2
    assert [e.address for e in store.query_logs(LogQuery(address="y@a.test")).entries] == ["y@a.test"]
    assert [e.status for e in store.query_logs(LogQuery(status="forwarded")).entries] == ["forwarded"]
    window = store.query_logs(LogQuery(since=base + timedelta(seconds=1), until=base + timedelta(seconds=2)))
    assert [e.kind for e in window.entries] == ["error"]


def test_log_entries_appended_together_are_each_kept_once(store: ConfigStore) -> None:
    """``append_logs``: the MX writes the lines of messages stored at the same moment in one go."""
    base = now()
    entries = []
    for i in range(5):
        entry = LogEntry(kind="delivery", component="mx", status="stored", address=f"u{i}@a.test")
        entry.time = base + timedelta(seconds=i)
        entries.append(entry)
    store.append_logs([])
    store.append_logs(entries)
    page = store.query_logs(LogQuery())
    assert [e.address for e in page.entries] == [f"u{i}@a.test" for i in (4, 3, 2, 1, 0)]
    assert [e.id for e in page.entries] == [e.id for e in reversed(entries)]
    with pytest.raises(AlreadyExists):  # an id kept already is refused as with append_log
        store.append_logs([entries[0]])


def test_log_pages_cover_everything_once(store: ConfigStore) -> None:
    base = now()
    made = [_log(store, i // 3, base) for i in range(25)]  # three entries per timestamp: ties break on id
    seen, cursor = [], None
    while True:
        page = store.query_logs(LogQuery(limit=10, cursor=cursor))
        seen += page.entries
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 25
    assert {e.id for e in seen} == {e.id for e in made}
    keys = [(e.time, e.id) for e in seen]
    assert keys == sorted(keys, reverse=True)


def test_log_query_is_validated(store: ConfigStore) -> None:
    with pytest.raises(InvalidInput):
        store.query_logs(LogQuery(limit=0))
    with pytest.raises(InvalidInput):
        store.query_logs(LogQuery(limit=100_000))
    with pytest.raises(InvalidInput):
        store.query_logs(LogQuery(cursor="not-a-cursor"))


def test_logs_filter_by_component_and_keep_audit_entries(store: ConfigStore) -> None:
    base = now()
    _log(store, 0, base)  # mx
    smtp = store.append_log(LogEntry("delivery", "smtp", "queued", time=base + timedelta(seconds=1)))
    jobs = store.append_log(LogEntry("delivery", "jobs", "delivered", time=base + timedelta(seconds=2)))
    audit = store.append_log(
        LogEntry("audit", "api", "alias.create", domain="a.test", address="x@a.test", detail="by token ci")
    )
    outbound = store.query_logs(LogQuery(kind="delivery", components=["smtp", "jobs"])).entries
    assert [e.id for e in outbound] == [jobs.id, smtp.id]
    assert [e.id for e in store.query_logs(LogQuery(kind="audit")).entries] == [audit.id]


def test_log_counts_per_day_and_status(store: ConfigStore) -> None:
    from datetime import UTC, datetime

    day = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    for offset, status in [(0, "delivered"), (0, "delivered"), (1, "delivered"), (1, "bounced"), (40, "deferred")]:
        store.append_log(LogEntry("delivery", "jobs", status, time=day + timedelta(seconds=offset)))
    store.append_log(LogEntry("error", "jobs", "delivered", time=day))
    counts = store.count_logs("delivery", day - timedelta(days=1), day + timedelta(seconds=30))
    first, second = day.date(), (day + timedelta(days=1)).date()
    assert counts == {(first, "delivered"): 2, (second, "delivered"): 1, (second, "bounced"): 1}
    with pytest.raises(InvalidInput):
        store.count_logs("delivery", day, day - timedelta(days=1))


# ---- mailbox homes: which data host holds which mailbox (issue 19, the store component) ----------
def test_mailbox_home_is_recorded_moved_listed_and_removed(store: ConfigStore) -> None:
    """Each mailbox id has at most one home host; setting it again moves it; lists filter by host."""
    assert store.get_mailbox_home("a" * 24) is None
    home = store.set_mailbox_home("a" * 24, "data1.example.net")
    assert home.mailbox_id == "a" * 24
    assert home.host == "data1.example.net"
    store.set_mailbox_home("b" * 24, "data1.example.net")
    store.set_mailbox_home("c" * 24, "data2.example.net")
    moved = store.set_mailbox_home("a" * 24, "data2.example.net")
    assert moved.updated >= home.updated
    got = store.get_mailbox_home("a" * 24)
    assert got is not None
    assert got.host == "data2.example.net"
    assert [h.mailbox_id for h in store.list_mailbox_homes("data2.example.net")] == ["a" * 24, "c" * 24]
    assert len(store.list_mailbox_homes()) == 3
    store.remove_mailbox_home("a" * 24)
    assert store.get_mailbox_home("a" * 24) is None
    store.remove_mailbox_home("a" * 24)  # removing twice is fine


def test_mailbox_home_refuses_an_empty_host(store: ConfigStore) -> None:
    with pytest.raises(InvalidInput):
        store.set_mailbox_home("a" * 24, "")


# ---- DKIM keys, shared by the hosts of a deployment (issue 19) ---------------------------------------
PEM_A = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
PEM_B = "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"


def test_dkim_key_first_stored_stays(store: ConfigStore) -> None:
    """Two hosts racing to store a domain's key agree on one: the first stored is kept and given
    back to the second (a new key would break every signature until DNS follows, RFC 6376 §3.6)."""
    assert store.get_dkim_key("example.test", "rsa") is None
    first = store.keep_dkim_key(DkimKeyRecord("example.test", "rsa", PEM_A, now()))
    assert first.pem == PEM_A
    second = store.keep_dkim_key(DkimKeyRecord("example.test", "rsa", PEM_B, now()))
    assert second.pem == PEM_A
    store.keep_dkim_key(DkimKeyRecord("example.test", "ed25519", PEM_B, now()))
    got = store.get_dkim_key("example.test", "ed25519")
    assert got is not None
    assert got.pem == PEM_B
    assert got.created_at.tzinfo is not None
    assert [(k.domain, k.algorithm) for k in store.list_dkim_keys()] == [
        ("example.test", "ed25519"),
        ("example.test", "rsa"),
    ]


def test_dkim_key_refuses_what_is_not_one(store: ConfigStore) -> None:
    with pytest.raises(InvalidInput):
        store.keep_dkim_key(DkimKeyRecord("example.test", "dsa", PEM_A, now()))
    with pytest.raises(InvalidInput):
        store.keep_dkim_key(DkimKeyRecord("example.test", "rsa", "not a key", now()))
    assert store.list_dkim_keys() == []


# ---- spam statistics (issue 21): counters per UTC day, added to by every MX host -----------------
def test_spam_counts_add_up_per_day(store: ConfigStore) -> None:
    """Two hosts' flushes for the same day add up; days are kept apart; [since, until) bounds them."""
    from datetime import date

    first, second = date(2026, 3, 1), date(2026, 3, 2)
    store.add_spam_counts([SpamCounts(first, {"scanned": 2, "junk": 1}, {"GTUBE": 1, "MIME_GOOD": 2})])
    store.add_spam_counts(
        [
            SpamCounts(first, {"scanned": 1, "rejected": 1}, {"GTUBE": 1}),
            SpamCounts(second, {"scanned": 1, "unchecked": 1}, {}),
        ]
    )
    assert store.spam_counts(first, second + timedelta(days=1)) == [
        SpamCounts(first, {"scanned": 3, "junk": 1, "rejected": 1}, {"GTUBE": 2, "MIME_GOOD": 2}),
        SpamCounts(second, {"scanned": 1, "unchecked": 1}, {}),
    ]
    assert store.spam_counts(second, second + timedelta(days=1)) == [SpamCounts(second, {"scanned": 1, "unchecked": 1})]
    assert store.spam_counts(first - timedelta(days=9), first) == []
    with pytest.raises(InvalidInput):
        store.spam_counts(second, first)


@pytest.mark.parametrize(
    "bad",
    [
        {"outcomes": {"eaten": 1}},
        {"outcomes": {"scanned": -1}},
        {"outcomes": {"scanned": 1.5}},
        {"symbols": {"A.B": 1}},
        {"symbols": {"$where": 1}},
        {"symbols": {"": 1}},
    ],
)
def test_bad_spam_counts_are_refused_whole(store: ConfigStore, bad: dict) -> None:
    """Nothing of a refused batch is added (the first day was fine): counters take counts only."""
    from datetime import date

    day = date(2026, 3, 1)
    with pytest.raises(InvalidInput):
        store.add_spam_counts([SpamCounts(day, {"scanned": 1}), SpamCounts(day, **bad)])
    assert store.spam_counts(day, day + timedelta(days=1)) == []


# ---- Sieve scripts (issue 22; names and limits from RFC 5804) ----------------------------------------


def _alias(store: ConfigStore, name: str = "sieve") -> Alias:
    if store.find_domain("example.test") is None:
        _domain(store)
    return store.add_alias(Alias(domain="example.test", kind="exact", name=name, storage=True))


def test_sieve_scripts_are_stored_replaced_and_listed_by_name(store: ConfigStore) -> None:
    alias = _alias(store)
    assert store.list_sieve_scripts(alias.id) == []
    store.put_sieve_script(alias.id, "vacation", 'require "vacation";\nvacation "away";\n')
    first = store.put_sieve_script(alias.id, "filters", "keep;\n")
    assert not first.active
    assert [s.name for s in store.list_sieve_scripts(alias.id)] == ["filters", "vacation"]
    store.activate_sieve_script(alias.id, "filters")
    replaced = store.put_sieve_script(alias.id, "filters", "discard;\n")
    assert replaced.active, "replacing a script keeps it active"
    got = store.get_sieve_script(alias.id, "filters")
    assert got is not None
    assert got.content == "discard;\n"
    assert got.active
    assert store.get_sieve_script(alias.id, "missing") is None
    other = _alias(store, "other")
    assert store.list_sieve_scripts(other.id) == [], "scripts belong to their alias"


def test_rfc5804_s2_8_one_active_script_and_none_on_request(store: ConfigStore) -> None:
    alias = _alias(store)
    for name in ("a", "b"):
        store.put_sieve_script(alias.id, name, "keep;")
    assert store.active_sieve_script(alias.id) is None
    store.activate_sieve_script(alias.id, "a")
    store.activate_sieve_script(alias.id, "b")
    active = store.active_sieve_script(alias.id)
    assert active is not None
    assert active.name == "b"
    assert [s.name for s in store.list_sieve_scripts(alias.id) if s.active] == ["b"]
    with pytest.raises(NotFound):
        store.activate_sieve_script(alias.id, "c")
    assert store.active_sieve_script(alias.id).name == "b", "a failed activation changes nothing"
    store.activate_sieve_script(alias.id, None)
    assert store.active_sieve_script(alias.id) is None


def test_rfc5804_s2_10_the_active_script_is_not_deleted(store: ConfigStore) -> None:
    alias = _alias(store)
    store.put_sieve_script(alias.id, "a", "keep;")
    store.activate_sieve_script(alias.id, "a")
    with pytest.raises(ScriptActive):
        store.delete_sieve_script(alias.id, "a")
    store.activate_sieve_script(alias.id, None)
    store.delete_sieve_script(alias.id, "a")
    assert store.list_sieve_scripts(alias.id) == []
    with pytest.raises(NotFound):
        store.delete_sieve_script(alias.id, "a")


def test_rfc5804_s2_11_rename_keeps_content_and_active_flag(store: ConfigStore) -> None:
    alias = _alias(store)
    store.put_sieve_script(alias.id, "old", "keep;")
    store.put_sieve_script(alias.id, "taken", "stop;")
    store.activate_sieve_script(alias.id, "old")
    with pytest.raises(AlreadyExists):
        store.rename_sieve_script(alias.id, "old", "taken")
    with pytest.raises(NotFound):
        store.rename_sieve_script(alias.id, "nothing", "new")
    renamed = store.rename_sieve_script(alias.id, "old", "nouveau été")
    assert renamed.name == "nouveau été"
    assert [(s.name, s.active, s.content) for s in store.list_sieve_scripts(alias.id)] == [
        ("nouveau été", True, "keep;"),
        ("taken", False, "stop;"),
    ]


def _two_scripts_beside_a_neighbours_active_one(store: ConfigStore) -> Alias:
    """An alias with scripts "a" and "b", none active, and another alias whose script is active."""
    alias = _alias(store)
    neighbour = _alias(store, "neighbour")
    store.put_sieve_script(neighbour.id, "theirs", "discard;")
    store.activate_sieve_script(neighbour.id, "theirs")
    store.put_sieve_script(alias.id, "a", "keep;")
    store.put_sieve_script(alias.id, "b", "stop;")
    return alias


def test_rfc5804_s2_8_the_active_script_is_none_until_one_is_activated(store: ConfigStore) -> None:
    alias = _two_scripts_beside_a_neighbours_active_one(store)
    assert store.active_sieve_script(alias.id) is None, "another alias's active script is not this one's"


def test_rfc5804_s2_8_the_active_script_is_the_one_activated(store: ConfigStore) -> None:
    alias = _two_scripts_beside_a_neighbours_active_one(store)
    store.activate_sieve_script(alias.id, "b")
    active = store.active_sieve_script(alias.id)
    assert active is not None
    assert (active.alias_id, active.name, active.content, active.active) == (alias.id, "b", "stop;", True)
    assert active == store.get_sieve_script(alias.id, "b"), "the whole record, as the script is read by name"


def test_rfc5804_s2_8_no_script_is_active_after_deactivation(store: ConfigStore) -> None:
    alias = _two_scripts_beside_a_neighbours_active_one(store)
    store.activate_sieve_script(alias.id, "a")
    store.activate_sieve_script(alias.id, None)
    assert store.active_sieve_script(alias.id) is None


def test_rfc5804_s2_11_the_active_script_renamed_is_still_the_active_one(store: ConfigStore) -> None:
    alias = _two_scripts_beside_a_neighbours_active_one(store)
    store.activate_sieve_script(alias.id, "a")
    store.rename_sieve_script(alias.id, "a", "renommé été")
    active = store.active_sieve_script(alias.id)
    assert active is not None
    assert (active.name, active.content, active.active) == ("renommé été", "keep;", True)
    assert store.get_sieve_script(alias.id, "a") is None


@pytest.mark.parametrize("name", ["", "a" * 129, "tab\there", "line\nbreak", "del\x7f", "sep\u2028x", "c1\x85"])
def test_rfc5804_s1_6_script_names_are_checked(store: ConfigStore, name: str) -> None:
    alias = _alias(store)
    with pytest.raises(InvalidInput):
        store.put_sieve_script(alias.id, name, "keep;")
    store.put_sieve_script(alias.id, "ok", "keep;")
    with pytest.raises(InvalidInput):
        store.rename_sieve_script(alias.id, "ok", name)
    assert [s.name for s in store.list_sieve_scripts(alias.id)] == ["ok"]


def test_sieve_script_limits(store: ConfigStore) -> None:
    alias = _alias(store)
    with pytest.raises(ScriptTooLarge) as too_large:
        store.put_sieve_script(alias.id, "big", "#" * (MAX_SIEVE_SCRIPT_BYTES + 1))
    assert too_large.value.limit == "maxsize"
    store.put_sieve_script(alias.id, "big", "#" * MAX_SIEVE_SCRIPT_BYTES)
    for i in range(1, MAX_SIEVE_SCRIPTS):
        store.put_sieve_script(alias.id, f"s{i:02}", "keep;")
    with pytest.raises(TooManyScripts) as too_many:
        store.put_sieve_script(alias.id, "one-more", "keep;")
    assert too_many.value.limit == "maxscripts"
    store.put_sieve_script(alias.id, "s01", "stop;")  # replacing is not one more
    with pytest.raises(NotFound):
        store.put_sieve_script("0" * 24, "x", "keep;")


def test_removing_an_alias_or_its_domain_removes_its_scripts(store: ConfigStore) -> None:
    alias = _alias(store)
    store.put_sieve_script(alias.id, "a", "keep;")
    store.activate_sieve_script(alias.id, "a")
    store.remove_alias(alias.id)
    assert store.list_sieve_scripts(alias.id) == []
    again = _alias(store, "again")
    store.put_sieve_script(again.id, "b", "keep;")
    store.remove_domain("example.test")
    assert store.list_sieve_scripts(again.id) == []


def test_the_store_and_the_compiler_refuse_the_same_script_sizes() -> None:
    """Two layers that may not import each other hold the limit: a script the store takes must compile."""
    assert MAX_SCRIPT_BYTES == MAX_SIEVE_SCRIPT_BYTES


# ---- DMARC aggregate and SMTP TLS reports (issue 23) ---------------------------------------------------
def _day(n: int):
    from datetime import UTC, datetime

    return datetime(2026, 3, n, tzinfo=UTC)


def _dmarc(org: str, report_id: str, day: int, domain: str = "example.test", **kw) -> DmarcReport:
    rows = [
        DmarcRow("192.0.2.1", 12, "none", "pass", "pass", domain, domain, [f"{domain}=pass"], f"{domain}=pass"),
        DmarcRow("198.51.100.9", 3, "quarantine", "fail", "fail", domain, "spoof.test", [], "spoof.test=fail"),
    ]
    return DmarcReport(org, report_id, domain, _day(day), _day(day) + timedelta(hours=23, minutes=59), rows=rows, **kw)


def _tls(org: str, report_id: str, day: int, domains=("example.test",)) -> TlsReport:
    return TlsReport(
        org,
        report_id,
        _day(day),
        _day(day) + timedelta(days=1),
        contact="tls-reports@reporter.test",
        policies=[TlsPolicy(d, "sts", 40, 2, [f"mail.{d}"]) for d in domains],
        failures=[TlsFailure(domains[0], "certificate-expired", 2, f"mail.{domains[0]}", "192.0.2.5", "203.0.113.9")],
    )


def test_rfc7489_appendix_c_a_dmarc_report_is_kept_once_per_reporter_and_id(store: ConfigStore) -> None:
    """Reporters send a report again (and to every rua address): (org_name, report_id) is kept once."""
    first = _dmarc("google.com", "r-1", 1, org_email="noreply-dmarc@google.com", policy="p=quarantine pct=100")
    assert store.add_dmarc_report(first) is True
    assert store.add_dmarc_report(_dmarc("google.com", "r-1", 1)) is False  # the same report again
    assert store.add_dmarc_report(_dmarc("outlook.com", "r-1", 1)) is True  # another reporter's id
    found = store.get_dmarc_report(first.id)
    assert found == first
    assert found.messages == 15
    assert found.rows[0].dkim_auth == ["example.test=pass"]
    with pytest.raises(NotFound):
        store.get_dmarc_report("0" * 24)


def test_dmarc_reports_by_period_and_domain_newest_first(store: ConfigStore) -> None:
    for org, rid, day, domain in (
        ("a.test", "1", 1, "example.test"),
        ("a.test", "2", 2, "example.test"),
        ("a.test", "3", 3, "other.test"),
        ("a.test", "4", 9, "example.test"),
    ):
        store.add_dmarc_report(_dmarc(org, rid, day, domain))
    listed = store.list_dmarc_reports(_day(1), _day(9))
    assert [r.report_id for r in listed] == ["3", "2", "1"]  # [since, until): day 9 is out
    assert [r.report_id for r in store.list_dmarc_reports(_day(1), _day(10), "example.test")] == ["4", "2", "1"]
    assert [r.report_id for r in store.list_dmarc_reports(_day(1), _day(10), limit=2)] == ["4", "3"]
    with pytest.raises(InvalidInput):
        store.list_dmarc_reports(_day(2), _day(1))
    with pytest.raises(InvalidInput):
        store.list_dmarc_reports(_day(1), _day(2), limit=0)


def test_rfc8460_s4_a_tls_report_is_kept_once_and_found_by_each_policy_domain(store: ConfigStore) -> None:
    report = _tls("google.com", "2026-03-01T00:00:00Z_example.test", 1, ("example.test", "other.test"))
    assert store.add_tls_report(report) is True
    assert store.add_tls_report(_tls("google.com", "2026-03-01T00:00:00Z_example.test", 1)) is False
    assert store.add_tls_report(_tls("microsoft.com", "x", 2, ("third.test",))) is True
    assert store.get_tls_report(report.id) == report
    assert report.domains == ["example.test", "other.test"]
    assert [r.org_name for r in store.list_tls_reports(_day(1), _day(5))] == ["microsoft.com", "google.com"]
    assert [r.org_name for r in store.list_tls_reports(_day(1), _day(5), "other.test")] == ["google.com"]
    assert store.list_tls_reports(_day(1), _day(5), "nobody.test") == []
    with pytest.raises(NotFound):
        store.get_tls_report("0" * 24)


@pytest.mark.parametrize(
    "bad",
    [
        {"org_name": ""},
        {"report_id": ""},
        {"report_id": "x" * 256},
        {"end": _day(1) - timedelta(seconds=1)},
        {"domain": ""},
        {"rows": [DmarcRow("192.0.2.1", -1, "none", "pass", "pass", "example.test")]},
        {"rows": [DmarcRow("192.0.2.1", 1, "none", "pass", "pass", "example.test")] * (MAX_REPORT_ROWS + 1)},
    ],
)
def test_a_dmarc_report_that_is_not_whole_is_refused(store: ConfigStore, bad: dict) -> None:
    with pytest.raises(InvalidInput):
        store.add_dmarc_report(replace(_dmarc("a.test", "1", 1), **bad))
    assert store.list_dmarc_reports(_day(1), _day(9)) == []


def test_a_tls_report_without_policies_or_with_negative_counts_is_refused(store: ConfigStore) -> None:
    with pytest.raises(InvalidInput):
        store.add_tls_report(replace(_tls("a.test", "1", 1), policies=[]))
    with pytest.raises(InvalidInput):
        store.add_tls_report(replace(_tls("a.test", "1", 1), policies=[TlsPolicy("example.test", "sts", -1, 0)]))
    assert store.list_tls_reports(_day(1), _day(9)) == []


def test_reports_whose_period_ended_before_a_moment_are_removed(store: ConfigStore) -> None:
    store.add_dmarc_report(_dmarc("a.test", "old", 1))
    store.add_dmarc_report(_dmarc("a.test", "new", 5))
    store.add_tls_report(_tls("a.test", "old", 1))
    assert store.remove_reports_before(_day(4)) == 2
    assert [r.report_id for r in store.list_dmarc_reports(_day(1), _day(9))] == ["new"]
    assert store.list_tls_reports(_day(1), _day(9)) == []
    assert store.add_dmarc_report(_dmarc("a.test", "old", 1)) is True  # gone: a resend is kept again
