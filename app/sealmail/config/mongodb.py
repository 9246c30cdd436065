"""MongoDB config store for multi-server deployments (a replica set shared by every host).

Ids are Sealmail's own random ids (``_id``), so records move between backends unchanged. Indexes
are created at start (idempotent); the schema version is a document in ``meta``.

The client (``open_client``) takes any ``mongodb://a,b,c/?replicaSet=rs0`` or ``mongodb+srv://``
URL; TLS options (``tls=true``, ``tlsCAFile``, ``tlsCertificateKeyFile``) travel in the URL. What a
config store needs is set here and wins over the URL: writes wait for a journaled majority
(``w="majority"``, ``j=true``) and are retried once across a failover, reads are retried too and go
to the primary with read concern ``majority`` — a host reads what it (or any host) wrote and was
acknowledged, and never a write a failover rolls back.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pymongo
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, ConfigurationError, DuplicateKeyError, InvalidURI

from sealmail.addresses import AliasKind
from sealmail.config.base import ConfigStore
from sealmail.config.codec import from_document, rows_from_plain, rows_to_plain, to_document
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
from sealmail.errors import AlreadyExists, ConfigStoreError
from sealmail.timecodec import parse_time

T = TypeVar("T")  # a model class of config.models

# 2: wrapped mailbox keys; 3: usage_bytes; 4: audit log entries; 5: mailbox homes; 6: DKIM keys;
# 7: aliases' sending_blocked (absent reads as False); 8: spam thresholds on domains and spam
# counters (a missing field reads as None); 9: Sieve scripts; 10: the self-service area's sealed TOTP
# secret on credentials and the alias of a user's own token (both absent read as None); 11: DMARC and
# TLS reports; 12: SCRAM verifiers on credentials (absent reads as None). None needed a rewrite.
SCHEMA_VERSION = 12

# Index definitions per collection: (keys, options). Applied at every start; MongoDB skips existing ones.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "domains": [([("name", ASCENDING)], {"unique": True})],
    "aliases": [
        ([("domain", ASCENDING), ("kind", ASCENDING), ("name", ASCENDING)], {"unique": True}),
    ],
    "admins": [([("email", ASCENDING)], {"unique": True})],
    "api_tokens": [
        ([("token_hash", ASCENDING)], {"unique": True}),
        ([("alias_id", ASCENDING)], {"sparse": True}),
    ],
    "alias_credentials": [([("mailbox_id", ASCENDING)], {"unique": True, "sparse": True})],
    "mailbox_homes": [([("host", ASCENDING), ("_id", ASCENDING)], {})],
    # _id: "<alias id>/<name>"; at most one active script per alias.
    "sieve_scripts": [
        ([("alias_id", ASCENDING), ("name", ASCENDING)], {"unique": True}),
        ([("alias_id", ASCENDING)], {"unique": True, "partialFilterExpression": {"active": True}}),
    ],
    # _id: the report's own id; a reporter's report once.
    "dmarc_reports": [
        ([("org_name", ASCENDING), ("report_id", ASCENDING)], {"unique": True}),
        ([("begin", DESCENDING), ("_id", DESCENDING)], {}),
        ([("domain", ASCENDING), ("begin", DESCENDING), ("_id", DESCENDING)], {}),
    ],
    "tls_reports": [
        ([("org_name", ASCENDING), ("report_id", ASCENDING)], {"unique": True}),
        ([("begin", DESCENDING), ("_id", DESCENDING)], {}),
        ([("domains", ASCENDING), ("begin", DESCENDING)], {}),
    ],
    "logs": [
        ([("time", DESCENDING), ("_id", DESCENDING)], {}),
        ([("kind", ASCENDING), ("time", DESCENDING), ("_id", DESCENDING)], {}),
        ([("domain", ASCENDING), ("time", DESCENDING), ("_id", DESCENDING)], {}),
        ([("address", ASCENDING), ("time", DESCENDING), ("_id", DESCENDING)], {}),
        ([("component", ASCENDING), ("time", DESCENDING), ("_id", DESCENDING)], {}),
    ],
}


# Options for the config store's client; given as keywords, they take precedence over the URL's.
CLIENT_OPTIONS: dict[str, Any] = {
    "tz_aware": True,
    "retryWrites": True,
    "retryReads": True,
    "w": "majority",
    "journal": True,
    "readConcernLevel": "majority",
    "readPreference": "primary",
    "serverSelectionTimeoutMS": 10_000,
}


def open_client(url: str, *, connect: bool = True) -> pymongo.MongoClient[dict[str, Any]]:
    """A client for ``url`` with the config store's guarantees (see the module docstring)."""
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigStoreError("the MongoDB URL must start with mongodb:// or mongodb+srv://")
    try:
        return pymongo.MongoClient(url, connect=connect, **CLIENT_OPTIONS)
    except (ConfigurationError, InvalidURI, OSError) as exc:  # names options or files, never the password
        raise ConfigStoreError(f"invalid MongoDB URL: {exc}") from None


def _sieve_script(doc: dict[str, Any]) -> SieveScript:
    return SieveScript(
        doc["alias_id"], doc["name"], doc["content"], bool(doc.get("active")), parse_time(doc["updated_at"])
    )


def _dkim_key(doc: dict[str, Any]) -> DkimKeyRecord:
    return DkimKeyRecord(doc["domain"], doc["algorithm"], doc["pem"], parse_time(doc["created_at"]))


class MongoConfigStore(ConfigStore):
    def __init__(self, url: str | None = None, database: str = "sealmail", *, client: Any = None) -> None:
        """Connect to ``url`` (replica-set URLs welcome), or use a ready ``client`` (tests: mongomock)."""
        if client is None:
            if url is None:
                raise ConfigStoreError("a MongoDB URL is required")
            client = open_client(url)
        self._client = client
        self._owns_client = url is not None
        self.db = client[database]
        self._prepare()

    def _prepare(self) -> None:
        meta = self.db.meta.find_one({"_id": "schema"})
        version = meta["version"] if meta else 0
        if version > SCHEMA_VERSION:
            raise ConfigStoreError(
                f"MongoDB config store has schema version {version}, newer than this Sealmail "
                f"understands ({SCHEMA_VERSION}): upgrade Sealmail before using it"
            )
        for collection, indexes in INDEXES.items():
            for keys, options in indexes:
                self.db[collection].create_index(keys, **options)
        if version < SCHEMA_VERSION:
            self.db.meta.update_one({"_id": "schema"}, {"$set": {"version": SCHEMA_VERSION}}, upsert=True)

    def schema_version(self) -> int:
        meta = self.db.meta.find_one({"_id": "schema"})
        return meta["version"] if meta else 0

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ---- helpers --------------------------------------------------------------------------------
    def _insert(self, collection: str, obj: Any, what: str, key: str = "id") -> None:
        try:
            self.db[collection].insert_one(to_document(obj, key))
        except DuplicateKeyError:
            raise AlreadyExists(f"{what} exists already") from None

    def _replace(self, collection: str, obj: Any, key: str = "id") -> bool:
        doc = to_document(obj, key)
        try:
            result = self.db[collection].replace_one({"_id": doc["_id"]}, doc)
        except DuplicateKeyError:
            raise AlreadyExists(f"another {collection[:-1]} has that name") from None
        return bool(result.matched_count > 0)

    def _one(self, cls: type[T], collection: str, query: dict[str, Any], key: str = "id") -> T | None:
        doc = self.db[collection].find_one(query)
        return from_document(cls, doc, key) if doc else None

    def _many(self, cls: type[T], collection: str, query: dict[str, Any]) -> list[T]:
        return [from_document(cls, doc) for doc in self.db[collection].find(query)]

    # ---- DKIM keys (_id: "<domain>/<algorithm>") ------------------------------------------------
    def _insert_dkim_key(self, key: DkimKeyRecord) -> None:
        fields = {"domain": key.domain, "algorithm": key.algorithm, "pem": key.pem, "created_at": key.created_at}
        # $setOnInsert: the first key stored stays (an upsert that finds one changes nothing).
        self.db.dkim_keys.update_one({"_id": f"{key.domain}/{key.algorithm}"}, {"$setOnInsert": fields}, upsert=True)

    def _get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None:
        doc = self.db.dkim_keys.find_one({"_id": f"{domain}/{algorithm}"})
        return _dkim_key(doc) if doc else None

    def _list_dkim_keys(self) -> list[DkimKeyRecord]:
        return [_dkim_key(doc) for doc in self.db.dkim_keys.find()]

    # ---- mailbox homes (_id: the mailbox id) -----------------------------------------------------
    def _put_mailbox_home(self, home: MailboxHome) -> None:
        doc = to_document(home, "mailbox_id")
        self.db.mailbox_homes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    def _get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None:
        return self._one(MailboxHome, "mailbox_homes", {"_id": mailbox_id}, key="mailbox_id")

    def _list_mailbox_homes(self, host: str | None) -> list[MailboxHome]:
        query = {} if host is None else {"host": host}
        cursor = self.db.mailbox_homes.find(query).sort("_id", ASCENDING)
        return [from_document(MailboxHome, doc, "mailbox_id") for doc in cursor]

    def _delete_mailbox_home(self, mailbox_id: str) -> None:
        self.db.mailbox_homes.delete_one({"_id": mailbox_id})

    # ---- Sieve scripts (_id: "<alias id>/<name>") -------------------------------------------------
    def _put_sieve_script(self, script: SieveScript) -> None:
        self.db.sieve_scripts.update_one(
            {"_id": f"{script.alias_id}/{script.name}"},
            {
                "$set": {"content": script.content, "updated_at": script.updated_at},
                "$setOnInsert": {"alias_id": script.alias_id, "name": script.name, "active": script.active},
            },
            upsert=True,
        )

    def _get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None:
        doc = self.db.sieve_scripts.find_one({"_id": f"{alias_id}/{name}"})
        return _sieve_script(doc) if doc else None

    def _list_sieve_scripts(self, alias_id: str) -> list[SieveScript]:
        return [_sieve_script(doc) for doc in self.db.sieve_scripts.find({"alias_id": alias_id})]

    def _get_active_sieve_script(self, alias_id: str) -> SieveScript | None:
        # The filter matches the partial unique index on {alias_id} where active is true.
        doc = self.db.sieve_scripts.find_one({"alias_id": alias_id, "active": True})
        return _sieve_script(doc) if doc else None

    def _activate_sieve_script(self, alias_id: str, name: str | None) -> bool:
        if name is not None and self.db.sieve_scripts.count_documents({"_id": f"{alias_id}/{name}"}) == 0:
            return False
        # Two writes: between them no script is active, which the MX reads as "keep" (never two active:
        # the partial unique index refuses that, so a racing activation fails instead).
        self.db.sieve_scripts.update_many({"alias_id": alias_id, "active": True}, {"$set": {"active": False}})
        if name is not None:
            self.db.sieve_scripts.update_one({"_id": f"{alias_id}/{name}"}, {"$set": {"active": True}})
        return True

    def _rename_sieve_script(self, alias_id: str, old: str, new: str) -> bool:
        doc = self.db.sieve_scripts.find_one({"_id": f"{alias_id}/{old}"})
        if doc is None:
            return False
        doc.update({"_id": f"{alias_id}/{new}", "name": new, "updated_at": now()})
        # Insert the new name before removing the old: a failure leaves the script under its old name.
        active = doc.pop("active", False)
        try:
            self.db.sieve_scripts.insert_one({**doc, "active": False})
        except DuplicateKeyError:
            raise AlreadyExists(f"a script named {new!r} exists already") from None
        self.db.sieve_scripts.delete_one({"_id": f"{alias_id}/{old}"})
        if active:
            self.db.sieve_scripts.update_one({"_id": f"{alias_id}/{new}"}, {"$set": {"active": True}})
        return True

    def _delete_sieve_script(self, alias_id: str, name: str) -> None:
        self.db.sieve_scripts.delete_one({"_id": f"{alias_id}/{name}"})

    def _delete_sieve_scripts(self, alias_id: str) -> None:
        self.db.sieve_scripts.delete_many({"alias_id": alias_id})

    # ---- domains --------------------------------------------------------------------------------
    def _insert_domain(self, domain: Domain) -> None:
        self._insert("domains", domain, f"domain {domain.unicode_name}")

    def _get_domain(self, name: str) -> Domain | None:
        return self._one(Domain, "domains", {"name": name})

    def _list_domains(self) -> list[Domain]:
        return self._many(Domain, "domains", {})

    def _delete_domain(self, name: str) -> None:
        self.db.domains.delete_one({"name": name})

    def _replace_domain(self, domain: Domain) -> bool:
        fields = {"spam_reject": domain.spam_reject, "spam_defer": domain.spam_defer, "spam_junk": domain.spam_junk}
        update: dict[str, Any] = {}
        if set_ := {k: v for k, v in fields.items() if v is not None}:
            update["$set"] = set_
        if unset := {k: "" for k, v in fields.items() if v is None}:
            update["$unset"] = unset  # None is left out, as ``to_document`` leaves it out
        return bool(self.db.domains.update_one({"name": domain.name}, update).matched_count > 0)

    # ---- aliases --------------------------------------------------------------------------------
    def _insert_alias(self, alias: Alias) -> None:
        self._insert("aliases", alias, f"alias {alias.name}@{alias.domain}")

    def _get_alias(self, alias_id: str) -> Alias | None:
        return self._one(Alias, "aliases", {"_id": alias_id})

    def _find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None:
        return self._one(Alias, "aliases", {"domain": domain, "kind": kind, "name": name})

    def _list_aliases(self, domain: str | None) -> list[Alias]:
        return self._many(Alias, "aliases", {} if domain is None else {"domain": domain})

    def _replace_alias(self, alias: Alias) -> bool:
        return self._replace("aliases", alias)

    def _delete_alias(self, alias_id: str) -> bool:
        return bool(self.db.aliases.delete_one({"_id": alias_id}).deleted_count > 0)

    # ---- credentials ----------------------------------------------------------------------------
    def _put_credential(self, credential: AliasCredential) -> None:
        doc = to_document(credential, "alias_id")
        try:
            self.db.alias_credentials.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        except DuplicateKeyError:
            raise AlreadyExists("another alias uses that mailbox id") from None

    def _claim_credential(self, credential: AliasCredential) -> bool:
        doc = to_document(credential, "alias_id")
        alias_id = doc.pop("_id")
        # {"mailbox_id": None} matches a document without the field (to_document leaves None out).
        query = {"_id": alias_id, "mailbox_id": None, "password_hash": credential.password_hash}
        try:
            return bool(self.db.alias_credentials.update_one(query, {"$set": doc}).modified_count == 1)
        except DuplicateKeyError:
            raise AlreadyExists("another alias uses that mailbox id") from None

    def _get_credential(self, alias_id: str) -> AliasCredential | None:
        return self._one(AliasCredential, "alias_credentials", {"_id": alias_id}, "alias_id")

    def _delete_credential(self, alias_id: str) -> None:
        self.db.alias_credentials.delete_one({"_id": alias_id})

    def _set_usage(self, alias_id: str, usage_bytes: int) -> None:
        self.db.alias_credentials.update_one({"_id": alias_id}, {"$set": {"usage_bytes": usage_bytes}})

    def _set_scram(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        change = {"$set": {"scram": verifiers}} if verifiers is not None else {"$unset": {"scram": ""}}
        found = self.db.alias_credentials.update_one({"_id": alias_id, "password_hash": password_hash}, change)
        return bool(found.matched_count == 1)

    def _set_totp(self, alias_id: str, sealed: bytes | None) -> bool:
        change = {"$set": {"totp_secret": sealed}} if sealed is not None else {"$unset": {"totp_secret": ""}}
        return bool(self.db.alias_credentials.update_one({"_id": alias_id}, change).matched_count == 1)

    # ---- admins ---------------------------------------------------------------------------------
    def _insert_admin(self, admin: AdminAccount) -> None:
        self._insert("admins", admin, f"admin account {admin.email}")

    def _get_admin(self, admin_id: str) -> AdminAccount | None:
        return self._one(AdminAccount, "admins", {"_id": admin_id})

    def _find_admin(self, email: str) -> AdminAccount | None:
        return self._one(AdminAccount, "admins", {"email": email})

    def _list_admins(self) -> list[AdminAccount]:
        return self._many(AdminAccount, "admins", {})

    def _take_recovery_code(self, admin_id: str, code_hash: str) -> int | None:
        # One document update that only matches while the code is in the list: atomic in MongoDB.
        after = self.db.admins.find_one_and_update(
            {"_id": admin_id, "recovery_codes": code_hash},
            {"$pull": {"recovery_codes": code_hash}},
            return_document=pymongo.ReturnDocument.AFTER,
        )
        return None if after is None else len(after.get("recovery_codes", []))

    def _replace_admin(self, admin: AdminAccount) -> bool:
        return self._replace("admins", admin)

    def _delete_admin(self, admin_id: str) -> bool:
        return bool(self.db.admins.delete_one({"_id": admin_id}).deleted_count > 0)

    # ---- tokens ---------------------------------------------------------------------------------
    def _insert_token(self, token: ApiToken) -> None:
        self._insert("api_tokens", token, "an API token with that hash")

    def _get_token(self, token_id: str) -> ApiToken | None:
        return self._one(ApiToken, "api_tokens", {"_id": token_id})

    def _find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self._one(ApiToken, "api_tokens", {"token_hash": token_hash})

    def _list_tokens(self) -> list[ApiToken]:
        return self._many(ApiToken, "api_tokens", {})

    def _replace_token(self, token: ApiToken) -> bool:
        return self._replace("api_tokens", token)

    # ---- logs -----------------------------------------------------------------------------------
    def _insert_log(self, entry: LogEntry) -> None:
        self._insert("logs", entry, f"log entry {entry.id}")

    def _insert_logs(self, entries: list[LogEntry]) -> None:
        try:
            self.db["logs"].insert_many([to_document(entry, "id") for entry in entries])
        except BulkWriteError as exc:
            if any(e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):  # duplicate key
                raise AlreadyExists("a log entry exists already") from None
            raise

    def _query_logs(self, query: LogQuery, after: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
        conditions: list[dict[str, Any]] = []
        for name in ("kind", "domain", "address", "status"):
            value = getattr(query, name)
            if value is not None:
                conditions.append({name: value})
        if query.components:
            conditions.append({"component": {"$in": list(query.components)}})
        if query.since is not None:
            conditions.append({"time": {"$gte": query.since}})
        if query.until is not None:
            conditions.append({"time": {"$lt": query.until}})
        if after is not None:
            t, entry_id = after
            conditions.append({"$or": [{"time": {"$lt": t}}, {"time": t, "_id": {"$lt": entry_id}}]})
        filt = {"$and": conditions} if conditions else {}
        cursor = self.db.logs.find(filt).sort([("time", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [from_document(LogEntry, doc) for doc in cursor]

    def _count_logs(self, kind: str, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
        # Two small fields per entry, counted here: the same on every MongoDB version and on mongomock.
        found = self.db.logs.find(
            {"kind": kind, "time": {"$gte": since, "$lt": until}}, {"time": 1, "status": 1, "_id": 0}
        )
        counts: Counter[tuple[date, str]] = Counter()
        for doc in found:
            moment = doc["time"] if doc["time"].tzinfo else doc["time"].replace(tzinfo=UTC)
            counts[(moment.astimezone(UTC).date(), doc["status"])] += 1
        return dict(counts)

    # ---- spam statistics (_id: the day, "YYYY-MM-DD") -------------------------------------------------
    def _add_spam_counts(self, counts: list[SpamCounts]) -> None:
        # $inc with upsert: one atomic document update per day, whichever host sends it. Symbol names
        # are letters, digits and underscores (``check_spam_counts``), safe in a field path.
        for day in counts:
            inc = {f"outcomes.{k}": n for k, n in day.outcomes.items() if n}
            inc |= {f"symbols.{k}": n for k, n in day.symbols.items() if n}
            if inc:
                self.db.spam_counts.update_one({"_id": day.day.isoformat()}, {"$inc": inc}, upsert=True)

    def _spam_counts(self, since: date, until: date) -> list[SpamCounts]:
        found = self.db.spam_counts.find({"_id": {"$gte": since.isoformat(), "$lt": until.isoformat()}})
        return [
            SpamCounts(date.fromisoformat(doc["_id"]), dict(doc.get("outcomes", {})), dict(doc.get("symbols", {})))
            for doc in found
        ]

    # ---- DMARC and TLS reports (_id: the report's own id) ---------------------------------------------
    def _insert_report(self, collection: str, doc: dict[str, Any]) -> bool:
        try:
            self.db[collection].insert_one(doc)
        except DuplicateKeyError:
            return False  # the same reporter's report id: kept already
        return True

    def _insert_dmarc_report(self, report: DmarcReport) -> bool:
        doc = {
            "_id": report.id,
            "org_name": report.org_name,
            "report_id": report.report_id,
            "domain": report.domain,
            "begin": report.begin,
            "end": report.end,
            "org_email": report.org_email,
            "policy": report.policy,
            "rows": rows_to_plain(report.rows),
            "carrier_dmarc": report.carrier_dmarc,
            "received_at": report.received_at,
        }
        return self._insert_report("dmarc_reports", doc)

    @staticmethod
    def _dmarc_report(doc: dict[str, Any]) -> DmarcReport:
        return DmarcReport(
            doc["org_name"],
            doc["report_id"],
            doc["domain"],
            parse_time(doc["begin"]),
            parse_time(doc["end"]),
            org_email=doc.get("org_email", ""),
            policy=doc.get("policy", ""),
            rows=rows_from_plain(DmarcRow, doc.get("rows", [])),
            carrier_dmarc=doc.get("carrier_dmarc", "none"),
            id=doc["_id"],
            received_at=parse_time(doc["received_at"]),
        )

    def _list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None, limit: int
    ) -> list[DmarcReport]:
        query: dict[str, Any] = {"begin": {"$gte": since, "$lt": until}}
        if domain is not None:
            query["domain"] = domain
        cursor = self.db.dmarc_reports.find(query).sort([("begin", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [self._dmarc_report(doc) for doc in cursor]

    def _get_dmarc_report(self, report_id: str) -> DmarcReport | None:
        doc = self.db.dmarc_reports.find_one({"_id": report_id})
        return self._dmarc_report(doc) if doc else None

    def _insert_tls_report(self, report: TlsReport) -> bool:
        doc = {
            "_id": report.id,
            "org_name": report.org_name,
            "report_id": report.report_id,
            "begin": report.begin,
            "end": report.end,
            "contact": report.contact,
            "domains": report.domains,
            "policies": rows_to_plain(report.policies),
            "failures": rows_to_plain(report.failures),
            "carrier_dmarc": report.carrier_dmarc,
            "received_at": report.received_at,
        }
        return self._insert_report("tls_reports", doc)

    @staticmethod
    def _tls_report(doc: dict[str, Any]) -> TlsReport:
        return TlsReport(
            doc["org_name"],
            doc["report_id"],
            parse_time(doc["begin"]),
            parse_time(doc["end"]),
            contact=doc.get("contact", ""),
            policies=rows_from_plain(TlsPolicy, doc.get("policies", [])),
            failures=rows_from_plain(TlsFailure, doc.get("failures", [])),
            carrier_dmarc=doc.get("carrier_dmarc", "none"),
            id=doc["_id"],
            received_at=parse_time(doc["received_at"]),
        )

    def _list_tls_reports(self, since: datetime, until: datetime, domain: str | None, limit: int) -> list[TlsReport]:
        query: dict[str, Any] = {"begin": {"$gte": since, "$lt": until}}
        if domain is not None:
            query["domains"] = domain  # matches an element of the list
        cursor = self.db.tls_reports.find(query).sort([("begin", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [self._tls_report(doc) for doc in cursor]

    def _get_tls_report(self, report_id: str) -> TlsReport | None:
        doc = self.db.tls_reports.find_one({"_id": report_id})
        return self._tls_report(doc) if doc else None

    def _delete_reports_before(self, moment: datetime) -> int:
        dmarc = self.db.dmarc_reports.delete_many({"end": {"$lt": moment}}).deleted_count
        return int(dmarc + self.db.tls_reports.delete_many({"end": {"$lt": moment}}).deleted_count)
