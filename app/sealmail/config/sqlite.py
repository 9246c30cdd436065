"""Embedded config store: one SQLite file in the data directory (the single-host default).

WAL mode so the components and a second terminal's CLI can read while one writes; the schema
version lives in ``PRAGMA user_version`` and ``MIGRATIONS`` only ever grows (forward migrations).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sealmail.addresses import AliasKind
from sealmail.config.base import ConfigStore
from sealmail.config.codec import from_sql, rows_from_plain, rows_to_plain, to_sql
from sealmail.config.models import (
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
    MailboxHome,
    SieveScript,
    SpamCounts,
    TlsFailure,
    TlsPolicy,
    TlsReport,
    now,
)
from sealmail.errors import AlreadyExists
from sealmail.migrations import apply_migrations
from sealmail.timecodec import format_time, parse_time
from sealmail.walmode import enable_wal

T = TypeVar("T")  # a model class of config.models

# Each entry upgrades the schema from version N to N+1. Never edit a released entry: append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE domains (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        unicode_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE aliases (
        id TEXT PRIMARY KEY,
        domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('exact', 'catchall', 'regex')),
        name TEXT NOT NULL,
        recipients TEXT NOT NULL,
        storage INTEGER NOT NULL,
        enabled INTEGER NOT NULL,
        disabled_reply TEXT NOT NULL CHECK (disabled_reply IN ('drop', 'defer', 'reject')),
        quota INTEGER,
        description TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (domain, kind, name)
    );
    CREATE TABLE alias_credentials (
        alias_id TEXT PRIMARY KEY REFERENCES aliases(id) ON DELETE CASCADE,
        password_hash TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE admins (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        totp_secret TEXT,
        recovery_codes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_login_at TEXT
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    );
    CREATE TABLE logs (
        id TEXT PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('delivery', 'error')),
        component TEXT NOT NULL,
        status TEXT NOT NULL,
        domain TEXT,
        address TEXT,
        message_id TEXT,
        peer TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX logs_by_time ON logs (time DESC, id DESC);
    CREATE INDEX logs_by_kind ON logs (kind, time DESC, id DESC);
    CREATE INDEX logs_by_domain ON logs (domain, time DESC, id DESC);
    CREATE INDEX logs_by_address ON logs (address, time DESC, id DESC);
    """,
    # 2: wrapped mailbox keys beside the password verifier.
    """
    ALTER TABLE alias_credentials ADD COLUMN mailbox_id TEXT;
    ALTER TABLE alias_credentials ADD COLUMN public_key BLOB;
    ALTER TABLE alias_credentials ADD COLUMN key_salt BLOB;
    ALTER TABLE alias_credentials ADD COLUMN key_kdf TEXT;
    ALTER TABLE alias_credentials ADD COLUMN key_mailbox BLOB;
    ALTER TABLE alias_credentials ADD COLUMN key_private BLOB;
    ALTER TABLE alias_credentials ADD COLUMN recovery_salt BLOB;
    ALTER TABLE alias_credentials ADD COLUMN recovery_mailbox BLOB;
    ALTER TABLE alias_credentials ADD COLUMN recovery_private BLOB;
    CREATE UNIQUE INDEX credentials_by_mailbox ON alias_credentials (mailbox_id);
    """,
    # 3: mailbox usage as last seen by a session holding the key (the MX cannot look inside).
    """
    ALTER TABLE alias_credentials ADD COLUMN usage_bytes INTEGER;
    """,
    # 4: an audit kind in the log (writes made through the API and the web admin); a CHECK constraint
    # cannot be altered in SQLite, so the table is rebuilt (the procedure of SQLite's ALTER TABLE documentation).
    """
    CREATE TABLE logs_new (
        id TEXT PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('delivery', 'error', 'audit')),
        component TEXT NOT NULL,
        status TEXT NOT NULL,
        domain TEXT,
        address TEXT,
        message_id TEXT,
        peer TEXT,
        detail TEXT NOT NULL
    );
    INSERT INTO logs_new SELECT id, time, kind, component, status, domain, address, message_id, peer, detail FROM logs;
    DROP TABLE logs;
    ALTER TABLE logs_new RENAME TO logs;
    CREATE INDEX logs_by_time ON logs (time DESC, id DESC);
    CREATE INDEX logs_by_kind ON logs (kind, time DESC, id DESC);
    CREATE INDEX logs_by_domain ON logs (domain, time DESC, id DESC);
    CREATE INDEX logs_by_address ON logs (address, time DESC, id DESC);
    """,
    # 5: which data host's store component serves each mailbox (issue 19).
    """
    CREATE TABLE mailbox_homes (
        mailbox_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE INDEX mailbox_homes_by_host ON mailbox_homes (host, mailbox_id);
    """,
    # 6: each domain's DKIM keys, shared by the hosts of a deployment.
    """
    CREATE TABLE dkim_keys (
        domain TEXT NOT NULL,
        algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
        pem TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (domain, algorithm)
    );
    """,
    # 7: an administrator can stop an alias sending through submission (issue 21).
    """
    ALTER TABLE aliases ADD COLUMN sending_blocked INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: per-domain spam thresholds (NULL: rspamd's own action), and the spam filter's daily counters.
    """
    ALTER TABLE domains ADD COLUMN spam_reject REAL;
    ALTER TABLE domains ADD COLUMN spam_defer REAL;
    ALTER TABLE domains ADD COLUMN spam_junk REAL;
    CREATE TABLE spam_counts (
        day TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('outcome', 'symbol')),
        name TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (day, kind, name)
    ) WITHOUT ROWID;
    """,
    # 9: each alias's Sieve scripts, at most one active (issue 22).
    """
    CREATE TABLE sieve_scripts (
        alias_id TEXT NOT NULL,
        name TEXT NOT NULL,
        content TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (alias_id, name)
    );
    CREATE UNIQUE INDEX sieve_scripts_one_active ON sieve_scripts (alias_id) WHERE active;
    """,
    # 10: the self-service area (issue 22): an alias's sealed TOTP secret, and tokens a user made for
    # their own alias.
    """
    ALTER TABLE alias_credentials ADD COLUMN totp_secret BLOB;
    ALTER TABLE api_tokens ADD COLUMN alias_id TEXT;
    CREATE INDEX api_tokens_by_alias ON api_tokens (alias_id) WHERE alias_id IS NOT NULL;
    """,
    # 11: DMARC aggregate and SMTP TLS reports (issue 23); one row per report, its rows as JSON.
    """
    CREATE TABLE dmarc_reports (
        id TEXT PRIMARY KEY,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        domain TEXT NOT NULL,
        begin_at TEXT NOT NULL,
        end_at TEXT NOT NULL,
        org_email TEXT NOT NULL,
        policy TEXT NOT NULL,
        row_data TEXT NOT NULL,
        carrier_dmarc TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (org_name, report_id)
    );
    CREATE INDEX dmarc_reports_by_begin ON dmarc_reports (begin_at DESC, id DESC);
    CREATE INDEX dmarc_reports_by_domain ON dmarc_reports (domain, begin_at DESC, id DESC);
    CREATE TABLE tls_reports (
        id TEXT PRIMARY KEY,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        begin_at TEXT NOT NULL,
        end_at TEXT NOT NULL,
        contact TEXT NOT NULL,
        domains TEXT NOT NULL,
        policies TEXT NOT NULL,
        failures TEXT NOT NULL,
        carrier_dmarc TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (org_name, report_id)
    );
    CREATE INDEX tls_reports_by_begin ON tls_reports (begin_at DESC, id DESC);
    """,
    # 12: SCRAM verifiers beside the Argon2id one (ManageSieve's SCRAM-SHA-1, RFC 5804 §2.1).
    """
    ALTER TABLE alias_credentials ADD COLUMN scram TEXT;
    """,
]


class SQLiteConfigStore(ConfigStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # ---- connections ----------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0, check_same_thread=False)
            db.row_factory = sqlite3.Row
            enable_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection, its lock taken at once (BEGIN
        IMMEDIATE), committed at the end of the block or rolled back on any error."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        apply_migrations(self._db(), MIGRATIONS, f"config store {self.path}")

    def schema_version(self) -> int:
        return int(self._db().execute("PRAGMA user_version").fetchone()[0])

    # ---- helpers --------------------------------------------------------------------------------
    def _insert(self, table: str, obj: Any, what: str) -> None:
        row = to_sql(obj)
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        try:
            self._db().execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise AlreadyExists(f"{what} exists already") from None
            raise

    def _replace(self, table: str, obj: Any, key: str = "id") -> bool:
        row = to_sql(obj)
        sets = ", ".join(f"{c} = :{c}" for c in row if c != key)
        try:
            cur = self._db().execute(f"UPDATE {table} SET {sets} WHERE {key} = :{key}", row)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"another {table[:-1]} has that name") from None
        return cur.rowcount > 0

    def _one(self, cls: type[T], sql: str, *args: Any) -> T | None:
        row = self._db().execute(sql, args).fetchone()
        return from_sql(cls, row) if row else None

    def _many(self, cls: type[T], sql: str, *args: Any) -> list[T]:
        return [from_sql(cls, row) for row in self._db().execute(sql, args).fetchall()]

    def _delete(self, sql: str, *args: Any) -> bool:
        return self._db().execute(sql, args).rowcount > 0

    # ---- domains --------------------------------------------------------------------------------
    def _insert_domain(self, domain: Domain) -> None:
        self._insert("domains", domain, f"domain {domain.unicode_name}")

    def _get_domain(self, name: str) -> Domain | None:
        return self._one(Domain, "SELECT * FROM domains WHERE name = ?", name)

    def _list_domains(self) -> list[Domain]:
        return self._many(Domain, "SELECT * FROM domains")

    def _delete_domain(self, name: str) -> None:
        self._delete("DELETE FROM domains WHERE name = ?", name)

    def _replace_domain(self, domain: Domain) -> bool:
        cur = self._db().execute(
            "UPDATE domains SET spam_reject = ?, spam_defer = ?, spam_junk = ? WHERE name = ?",
            (domain.spam_reject, domain.spam_defer, domain.spam_junk, domain.name),
        )
        return cur.rowcount > 0

    # ---- aliases --------------------------------------------------------------------------------
    def _insert_alias(self, alias: Alias) -> None:
        self._insert("aliases", alias, f"alias {alias.name}@{alias.domain}")

    def _get_alias(self, alias_id: str) -> Alias | None:
        return self._one(Alias, "SELECT * FROM aliases WHERE id = ?", alias_id)

    def _find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None:
        return self._one(Alias, "SELECT * FROM aliases WHERE domain = ? AND kind = ? AND name = ?", domain, kind, name)

    def _list_aliases(self, domain: str | None) -> list[Alias]:
        if domain is None:
            return self._many(Alias, "SELECT * FROM aliases")
        return self._many(Alias, "SELECT * FROM aliases WHERE domain = ?", domain)

    def _replace_alias(self, alias: Alias) -> bool:
        return self._replace("aliases", alias)

    def _delete_alias(self, alias_id: str) -> bool:
        return self._delete("DELETE FROM aliases WHERE id = ?", alias_id)

    # ---- credentials ----------------------------------------------------------------------------
    def _put_credential(self, credential: AliasCredential) -> None:
        # An upsert, not INSERT OR REPLACE: REPLACE would delete whichever row holds a clashing mailbox id.
        row = to_sql(credential)
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "alias_id")
        sql = (
            f"INSERT INTO alias_credentials ({columns}) VALUES ({marks}) ON CONFLICT (alias_id) DO UPDATE SET {updates}"
        )
        try:
            self._db().execute(sql, row)
        except sqlite3.IntegrityError:
            raise AlreadyExists("another alias uses that mailbox id") from None

    def _claim_credential(self, credential: AliasCredential) -> bool:
        row = to_sql(credential)
        updates = ", ".join(f"{c} = :{c}" for c in row if c != "alias_id")
        sql = (
            f"UPDATE alias_credentials SET {updates} "
            "WHERE alias_id = :alias_id AND mailbox_id IS NULL AND password_hash = :password_hash"
        )
        try:
            return self._db().execute(sql, row).rowcount == 1
        except sqlite3.IntegrityError:
            raise AlreadyExists("another alias uses that mailbox id") from None

    def _get_credential(self, alias_id: str) -> AliasCredential | None:
        return self._one(AliasCredential, "SELECT * FROM alias_credentials WHERE alias_id = ?", alias_id)

    def _set_usage(self, alias_id: str, usage_bytes: int) -> None:
        self._db().execute(
            "UPDATE alias_credentials SET usage_bytes = ? WHERE alias_id = ? AND usage_bytes IS NOT ?",
            (usage_bytes, alias_id, usage_bytes),
        )

    def _set_totp(self, alias_id: str, sealed: bytes | None) -> bool:
        cur = self._db().execute("UPDATE alias_credentials SET totp_secret = ? WHERE alias_id = ?", (sealed, alias_id))
        return cur.rowcount > 0

    def _set_scram(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        cur = self._db().execute(
            "UPDATE alias_credentials SET scram = ? WHERE alias_id = ? AND password_hash = ?",
            (verifiers, alias_id, password_hash),
        )
        return cur.rowcount > 0

    def _delete_credential(self, alias_id: str) -> None:
        self._delete("DELETE FROM alias_credentials WHERE alias_id = ?", alias_id)

    # ---- DKIM keys -------------------------------------------------------------------------------
    def _insert_dkim_key(self, key: DkimKeyRecord) -> None:
        self._db().execute(
            "INSERT INTO dkim_keys (domain, algorithm, pem, created_at) VALUES (:domain, :algorithm, :pem, :created_at) "
            "ON CONFLICT (domain, algorithm) DO NOTHING",
            to_sql(key),
        )

    def _get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None:
        return self._one(DkimKeyRecord, "SELECT * FROM dkim_keys WHERE domain = ? AND algorithm = ?", domain, algorithm)

    def _list_dkim_keys(self) -> list[DkimKeyRecord]:
        return self._many(DkimKeyRecord, "SELECT * FROM dkim_keys")

    # ---- mailbox homes ---------------------------------------------------------------------------
    def _put_mailbox_home(self, home: MailboxHome) -> None:
        self._db().execute(
            "INSERT INTO mailbox_homes (mailbox_id, host, updated) VALUES (:mailbox_id, :host, :updated) "
            "ON CONFLICT (mailbox_id) DO UPDATE SET host = excluded.host, updated = excluded.updated",
            to_sql(home),
        )

    def _get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None:
        return self._one(MailboxHome, "SELECT * FROM mailbox_homes WHERE mailbox_id = ?", mailbox_id)

    def _list_mailbox_homes(self, host: str | None) -> list[MailboxHome]:
        if host is None:
            return self._many(MailboxHome, "SELECT * FROM mailbox_homes ORDER BY mailbox_id")
        return self._many(MailboxHome, "SELECT * FROM mailbox_homes WHERE host = ? ORDER BY mailbox_id", host)

    def _delete_mailbox_home(self, mailbox_id: str) -> None:
        self._delete("DELETE FROM mailbox_homes WHERE mailbox_id = ?", mailbox_id)

    # ---- Sieve scripts --------------------------------------------------------------------------
    def _put_sieve_script(self, script: SieveScript) -> None:
        self._db().execute(
            "INSERT INTO sieve_scripts (alias_id, name, content, active, updated_at)"
            " VALUES (:alias_id, :name, :content, :active, :updated_at)"
            " ON CONFLICT (alias_id, name) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
            to_sql(script),
        )

    def _get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None:
        return self._one(SieveScript, "SELECT * FROM sieve_scripts WHERE alias_id = ? AND name = ?", alias_id, name)

    def _list_sieve_scripts(self, alias_id: str) -> list[SieveScript]:
        return self._many(SieveScript, "SELECT * FROM sieve_scripts WHERE alias_id = ?", alias_id)

    def _get_active_sieve_script(self, alias_id: str) -> SieveScript | None:
        # "AND active" is the partial index's own condition: SQLite answers from sieve_scripts_one_active.
        return self._one(SieveScript, "SELECT * FROM sieve_scripts WHERE alias_id = ? AND active", alias_id)

    def _activate_sieve_script(self, alias_id: str, name: str | None) -> bool:
        with self._immediate() as db:  # one step: never two active, never none when one was asked for
            known = (
                name is None
                or db.execute(
                    "SELECT 1 FROM sieve_scripts WHERE alias_id = ? AND name = ?", (alias_id, name)
                ).fetchone()
            )
            if known:
                db.execute("UPDATE sieve_scripts SET active = 0 WHERE alias_id = ? AND active", (alias_id,))
                db.execute("UPDATE sieve_scripts SET active = 1 WHERE alias_id = ? AND name = ?", (alias_id, name))
        return bool(known)

    def _rename_sieve_script(self, alias_id: str, old: str, new: str) -> bool:
        try:
            cur = self._db().execute(
                "UPDATE sieve_scripts SET name = ?, updated_at = ? WHERE alias_id = ? AND name = ?",
                (new, format_time(now()), alias_id, old),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"a script named {new!r} exists already") from None
        return cur.rowcount > 0

    def _delete_sieve_script(self, alias_id: str, name: str) -> None:
        self._delete("DELETE FROM sieve_scripts WHERE alias_id = ? AND name = ?", alias_id, name)

    def _delete_sieve_scripts(self, alias_id: str) -> None:
        self._delete("DELETE FROM sieve_scripts WHERE alias_id = ?", alias_id)

    # ---- admins ---------------------------------------------------------------------------------
    def _insert_admin(self, admin: AdminAccount) -> None:
        self._insert("admins", admin, f"admin account {admin.email}")

    def _get_admin(self, admin_id: str) -> AdminAccount | None:
        return self._one(AdminAccount, "SELECT * FROM admins WHERE id = ?", admin_id)

    def _find_admin(self, email: str) -> AdminAccount | None:
        return self._one(AdminAccount, "SELECT * FROM admins WHERE email = ?", email)

    def _list_admins(self) -> list[AdminAccount]:
        return self._many(AdminAccount, "SELECT * FROM admins")

    def _take_recovery_code(self, admin_id: str, code_hash: str) -> int | None:
        # Compare-and-set on the whole list: an UPDATE that finds the list changed since it was read
        # (another request spent a code) changes nothing, and the loop reads it again.
        db = self._db()
        while True:
            row = db.execute("SELECT recovery_codes FROM admins WHERE id = ?", (admin_id,)).fetchone()
            if row is None:
                return None
            codes = json.loads(row["recovery_codes"])
            if code_hash not in codes:
                return None
            left = [c for c in codes if c != code_hash]
            cur = db.execute(
                "UPDATE admins SET recovery_codes = ? WHERE id = ? AND recovery_codes = ?",
                (json.dumps(left, ensure_ascii=False), admin_id, row["recovery_codes"]),
            )
            if cur.rowcount == 1:
                return len(left)

    def _replace_admin(self, admin: AdminAccount) -> bool:
        return self._replace("admins", admin)

    def _delete_admin(self, admin_id: str) -> bool:
        return self._delete("DELETE FROM admins WHERE id = ?", admin_id)

    # ---- tokens ---------------------------------------------------------------------------------
    def _insert_token(self, token: ApiToken) -> None:
        self._insert("api_tokens", token, "an API token with that hash")

    def _get_token(self, token_id: str) -> ApiToken | None:
        return self._one(ApiToken, "SELECT * FROM api_tokens WHERE id = ?", token_id)

    def _find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self._one(ApiToken, "SELECT * FROM api_tokens WHERE token_hash = ?", token_hash)

    def _list_tokens(self) -> list[ApiToken]:
        return self._many(ApiToken, "SELECT * FROM api_tokens")

    def _replace_token(self, token: ApiToken) -> bool:
        return self._replace("api_tokens", token)

    # ---- logs -----------------------------------------------------------------------------------
    def _insert_log(self, entry: LogEntry) -> None:
        self._insert("logs", entry, f"log entry {entry.id}")

    def _insert_logs(self, entries: list[LogEntry]) -> None:
        with self._immediate():  # one commit for all of them
            super()._insert_logs(entries)

    def _query_logs(self, query: LogQuery, after: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
        where, args = [], []
        for column in ("kind", "domain", "address", "status"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.components:
            where.append(f"component IN ({', '.join('?' for _ in query.components)})")
            args += list(query.components)
        if query.since is not None:
            where.append("time >= ?")
            args.append(format_time(query.since))
        if query.until is not None:
            where.append("time < ?")
            args.append(format_time(query.until))
        if after is not None:
            where.append("(time < ? OR (time = ? AND id < ?))")
            args += [format_time(after[0]), format_time(after[0]), after[1]]
        sql = "SELECT * FROM logs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        return self._many(LogEntry, sql, *args, limit)

    def _count_logs(self, kind: str, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
        # Times are fixed-width UTC text: the first ten characters are the day.
        rows = self._db().execute(
            "SELECT substr(time, 1, 10) AS day, status, count(*) FROM logs"
            " WHERE kind = ? AND time >= ? AND time < ? GROUP BY day, status",
            (kind, format_time(since), format_time(until)),
        )
        return {(date.fromisoformat(day), status): n for day, status, n in rows.fetchall()}

    # ---- spam statistics ------------------------------------------------------------------------
    def _add_spam_counts(self, counts: list[SpamCounts]) -> None:
        rows = [
            (day.day.isoformat(), kind, name, n)
            for day in counts
            for kind, values in (("outcome", day.outcomes), ("symbol", day.symbols))
            for name, n in values.items()
            if n
        ]
        with self._immediate() as db:  # one transaction: a flush adds all of its numbers or none
            db.executemany(
                "INSERT INTO spam_counts (day, kind, name, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (day, kind, name) DO UPDATE SET count = count + excluded.count",
                rows,
            )

    def _spam_counts(self, since: date, until: date) -> list[SpamCounts]:
        rows = self._db().execute(
            "SELECT day, kind, name, count FROM spam_counts WHERE day >= ? AND day < ?",
            (since.isoformat(), until.isoformat()),
        )
        days: dict[str, SpamCounts] = {}
        for day, kind, name, n in rows.fetchall():
            counts = days.setdefault(day, SpamCounts(date.fromisoformat(day)))
            (counts.outcomes if kind == "outcome" else counts.symbols)[name] = n
        return list(days.values())

    # ---- DMARC and TLS reports ------------------------------------------------------------------
    def _insert_dmarc_report(self, report: DmarcReport) -> bool:
        row = {
            "id": report.id,
            "org_name": report.org_name,
            "report_id": report.report_id,
            "domain": report.domain,
            "begin_at": format_time(report.begin),
            "end_at": format_time(report.end),
            "org_email": report.org_email,
            "policy": report.policy,
            "row_data": json.dumps(rows_to_plain(report.rows), ensure_ascii=False),
            "carrier_dmarc": report.carrier_dmarc,
            "received_at": format_time(report.received_at),
        }
        return self._insert_report("dmarc_reports", row)

    def _insert_report(self, table: str, row: dict[str, Any]) -> bool:
        """Insert a report row unless its (reporter, report id) is stored already; True when it was new."""
        columns = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT (org_name, report_id) DO NOTHING"
        return self._db().execute(sql, row).rowcount == 1

    @staticmethod
    def _dmarc_report(row: sqlite3.Row) -> DmarcReport:
        return DmarcReport(
            row["org_name"],
            row["report_id"],
            row["domain"],
            parse_time(row["begin_at"]),
            parse_time(row["end_at"]),
            org_email=row["org_email"],
            policy=row["policy"],
            rows=rows_from_plain(DmarcRow, json.loads(row["row_data"])),
            carrier_dmarc=row["carrier_dmarc"],
            id=row["id"],
            received_at=parse_time(row["received_at"]),
        )

    def _list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None, limit: int
    ) -> list[DmarcReport]:
        where, args = "begin_at >= ? AND begin_at < ?", [format_time(since), format_time(until)]
        if domain is not None:
            where += " AND domain = ?"
            args.append(domain)
        rows = self._db().execute(
            f"SELECT * FROM dmarc_reports WHERE {where} ORDER BY begin_at DESC, id DESC LIMIT ?", (*args, limit)
        )
        return [self._dmarc_report(row) for row in rows.fetchall()]

    def _get_dmarc_report(self, report_id: str) -> DmarcReport | None:
        row = self._db().execute("SELECT * FROM dmarc_reports WHERE id = ?", (report_id,)).fetchone()
        return self._dmarc_report(row) if row else None

    def _insert_tls_report(self, report: TlsReport) -> bool:
        row = {
            "id": report.id,
            "org_name": report.org_name,
            "report_id": report.report_id,
            "begin_at": format_time(report.begin),
            "end_at": format_time(report.end),
            "contact": report.contact,
            "domains": json.dumps(report.domains, ensure_ascii=False),
            "policies": json.dumps(rows_to_plain(report.policies), ensure_ascii=False),
            "failures": json.dumps(rows_to_plain(report.failures), ensure_ascii=False),
            "carrier_dmarc": report.carrier_dmarc,
            "received_at": format_time(report.received_at),
        }
        return self._insert_report("tls_reports", row)

    @staticmethod
    def _tls_report(row: sqlite3.Row) -> TlsReport:
        return TlsReport(
            row["org_name"],
            row["report_id"],
            parse_time(row["begin_at"]),
            parse_time(row["end_at"]),
            contact=row["contact"],
            policies=rows_from_plain(TlsPolicy, json.loads(row["policies"])),
            failures=rows_from_plain(TlsFailure, json.loads(row["failures"])),
            carrier_dmarc=row["carrier_dmarc"],
            id=row["id"],
            received_at=parse_time(row["received_at"]),
        )

    def _list_tls_reports(self, since: datetime, until: datetime, domain: str | None, limit: int) -> list[TlsReport]:
        where, args = "begin_at >= ? AND begin_at < ?", [format_time(since), format_time(until)]
        if domain is not None:
            where += " AND EXISTS (SELECT 1 FROM json_each(tls_reports.domains) WHERE value = ?)"
            args.append(domain)
        rows = self._db().execute(
            f"SELECT * FROM tls_reports WHERE {where} ORDER BY begin_at DESC, id DESC LIMIT ?", (*args, limit)
        )
        return [self._tls_report(row) for row in rows.fetchall()]

    def _get_tls_report(self, report_id: str) -> TlsReport | None:
        row = self._db().execute("SELECT * FROM tls_reports WHERE id = ?", (report_id,)).fetchone()
        return self._tls_report(row) if row else None

    def _delete_reports_before(self, moment: datetime) -> int:
        db, cutoff = self._db(), format_time(moment)
        dmarc = db.execute("DELETE FROM dmarc_reports WHERE end_at < ?", (cutoff,)).rowcount
        return int(dmarc + db.execute("DELETE FROM tls_reports WHERE end_at < ?", (cutoff,)).rowcount)
