"""What each backend does beyond the shared contract: schema versions, indexes, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import mongomock
import pytest

from sealmail.config.models import Alias, Domain
from sealmail.config.mongodb import SCHEMA_VERSION, MongoConfigStore
from sealmail.config.sqlite import MIGRATIONS, SQLiteConfigStore
from sealmail.errors import ConfigStoreError


def test_sqlite_migrates_a_new_file_to_the_latest_version(tmp_path) -> None:
    path = tmp_path / "config.sqlite"
    SQLiteConfigStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"domains", "aliases", "alias_credentials", "admins", "api_tokens", "logs"} <= tables


def test_sqlite_reopening_keeps_data(tmp_path) -> None:
    path = tmp_path / "config.sqlite"
    with SQLiteConfigStore(path) as store:
        store.add_domain(Domain(name="example.test", unicode_name="example.test"))
    with SQLiteConfigStore(path) as store:
        assert [d.name for d in store.list_domains()] == ["example.test"]


def test_sqlite_applies_pending_migrations_only(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.sqlite"
    SQLiteConfigStore(path).close()
    extra = "CREATE TABLE later_feature (id TEXT PRIMARY KEY)"
    monkeypatch.setattr("sealmail.config.sqlite.MIGRATIONS", [*MIGRATIONS, extra])
    with SQLiteConfigStore(path) as store:
        assert store.schema_version() == len(MIGRATIONS) + 1
        store.add_domain(Domain(name="example.test", unicode_name="example.test"))


def test_sqlite_refuses_a_newer_schema(tmp_path) -> None:
    path = tmp_path / "config.sqlite"
    SQLiteConfigStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(ConfigStoreError, match="upgrade Sealmail"):
        SQLiteConfigStore(path)


def test_sqlite_concurrent_processes_migrate_once_and_all_write(tmp_path) -> None:
    """Components start together: they race to create the file and must all succeed."""
    path = tmp_path / "config.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        from sealmail.config.sqlite import SQLiteConfigStore
        from sealmail.config.models import Alias, Domain
        store = SQLiteConfigStore({str(path)!r})
        n = sys.argv[1]
        for i in range(20):
            store.add_domain(Domain(name=f"d{{n}}-{{i}}.test", unicode_name=f"d{{n}}-{{i}}.test"))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with SQLiteConfigStore(path) as store:
        assert len(store.list_domains()) == 80


def test_sqlite_reads_the_active_sieve_script_as_one_row_through_its_partial_index(tmp_path) -> None:
    """The MX asks for an alias's active script at every RCPT: one statement, answered from the
    partial unique index on active scripts, never a scan of the alias's scripts."""
    with SQLiteConfigStore(tmp_path / "config.sqlite") as store:
        store.add_domain(Domain(name="example.test", unicode_name="example.test"))
        alias = store.add_alias(Alias(domain="example.test", kind="exact", name="a", storage=True))
        for name in ("one", "two"):
            store.put_sieve_script(alias.id, name, "keep;")
        store.activate_sieve_script(alias.id, "two")
        db = store._db()
        statements: list[str] = []
        db.set_trace_callback(statements.append)
        try:
            active = store.active_sieve_script(alias.id)
        finally:
            db.set_trace_callback(None)
        assert active is not None
        assert active.name == "two"
        assert len(statements) == 1, statements
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {statements[0]}"))
        assert "USING INDEX sieve_scripts_one_active" in plan, plan


def test_mongodb_creates_indexes_and_records_its_version() -> None:
    client = mongomock.MongoClient(tz_aware=True)
    store = MongoConfigStore(client=client, database="t")
    assert store.schema_version() == SCHEMA_VERSION
    aliases = client["t"]["aliases"].index_information().values()
    assert {"key": [("domain", 1), ("kind", 1), ("name", 1)], "unique": True}.items() <= next(
        ix for ix in aliases if ix["key"][0][0] == "domain"
    ).items()
    assert any(ix.get("unique") for ix in client["t"]["api_tokens"].index_information().values())
    before = {name: client["t"][name].index_information() for name in client["t"].list_collection_names()}
    MongoConfigStore(client=client, database="t")  # a second start (every component, every host) is harmless
    after = {name: client["t"][name].index_information() for name in client["t"].list_collection_names()}
    assert after == before


def test_mongodb_refuses_a_newer_schema() -> None:
    client = mongomock.MongoClient(tz_aware=True)
    client["t"]["meta"].insert_one({"_id": "schema", "version": SCHEMA_VERSION + 1})
    with pytest.raises(ConfigStoreError, match="upgrade Sealmail"):
        MongoConfigStore(client=client, database="t")
