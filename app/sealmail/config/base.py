"""The config-store interface.

Following Radicale's plug-in shape: the public methods here enforce the invariants (a domain's
aliases go with it, an alias must belong to a hosted domain, logs page the same way everywhere)
and call protected hooks that each backend implements. Both backends run one contract suite
(``tests/contract/test_config_store.py``).

The store is synchronous; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import date, datetime

from sealmail.addresses import AliasKind
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
    Domain,
    LogEntry,
    LogKind,
    LogPage,
    LogQuery,
    MailboxHome,
    SieveScript,
    SpamCounts,
    TlsReport,
    check_report,
    check_sieve_name,
    check_spam_counts,
    check_spam_thresholds,
    now,
)
from sealmail.errors import AlreadyExists, InvalidInput, NotFound, ScriptActive, ScriptTooLarge, TooManyScripts

MAX_LOG_PAGE = 1000


class ConfigStore(ABC):
    """Admin accounts, domains, aliases, alias credentials, API tokens and the delivery/error log."""

    # ---- lifecycle ------------------------------------------------------------------------------
    @abstractmethod
    def schema_version(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- domains --------------------------------------------------------------------------------
    def add_domain(self, domain: Domain) -> Domain:
        """Raises ``AlreadyExists`` when a domain of that name is hosted."""
        self._insert_domain(domain)
        return domain

    def find_domain(self, name: str) -> Domain | None:
        return self._get_domain(name)

    def get_domain(self, name: str) -> Domain:
        domain = self._get_domain(name)
        if domain is None:
            raise NotFound(f"domain {name} is not hosted here")
        return domain

    def list_domains(self) -> list[Domain]:
        return sorted(self._list_domains(), key=lambda d: d.name)

    def update_domain(self, domain: Domain) -> Domain:
        """Store a hosted domain's settings (its spam thresholds); its name and id stay what they are."""
        check_spam_thresholds(domain.spam_reject, domain.spam_defer, domain.spam_junk)
        if not self._replace_domain(domain):
            raise NotFound(f"domain {domain.name} is not hosted here")
        return domain

    def remove_domain(self, name: str) -> None:
        """Remove a domain with its aliases and their credentials."""
        self.get_domain(name)
        for alias in self._list_aliases(name):
            self._delete_credential(alias.id)
            self._delete_sieve_scripts(alias.id)
            self._revoke_alias_tokens(alias.id)
            self._delete_alias(alias.id)
        self._delete_domain(name)

    # ---- aliases --------------------------------------------------------------------------------
    def add_alias(self, alias: Alias) -> Alias:
        """Raises ``NotFound`` for an unknown domain and ``AlreadyExists`` for a duplicate name."""
        self.get_domain(alias.domain)
        self._insert_alias(alias)
        return alias

    def get_alias(self, alias_id: str) -> Alias:
        alias = self._get_alias(alias_id)
        if alias is None:
            raise NotFound(f"alias {alias_id} does not exist")
        return alias

    def find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None:
        return self._find_alias(domain, kind, name)

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return sorted(self._list_aliases(domain), key=lambda a: (a.domain, a.kind != "exact", a.name))

    def list_pattern_aliases(self, domain: str) -> list[Alias]:
        """Regex and catch-all aliases of a domain, oldest first (the order they are tried in)."""
        found = [a for a in self._list_aliases(domain) if a.kind != "exact"]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    def update_alias(self, alias: Alias) -> Alias:
        updated = replace(alias, updated_at=now())
        if not self._replace_alias(updated):
            raise NotFound(f"alias {alias.id} does not exist")
        return updated

    def remove_alias(self, alias_id: str) -> None:
        self._delete_credential(alias_id)
        self._delete_sieve_scripts(alias_id)
        self._revoke_alias_tokens(alias_id)
        if not self._delete_alias(alias_id):
            raise NotFound(f"alias {alias_id} does not exist")

    # ---- alias credentials ----------------------------------------------------------------------
    def set_credential(self, credential: AliasCredential) -> None:
        self.get_alias(credential.alias_id)
        self._put_credential(credential)

    def get_credential(self, alias_id: str) -> AliasCredential | None:
        return self._get_credential(alias_id)

    def claim_mailbox(self, credential: AliasCredential) -> bool:
        """Store ``credential`` (a new mailbox id and its wrapped keys) only if the alias has a
        credential without a mailbox whose verifier is still ``credential.password_hash``: one atomic
        compare-and-set. True when this call's mailbox won; False changes nothing (another sign-in
        made the mailbox first, or the password changed meanwhile)."""
        return self._claim_credential(credential)

    def record_usage(self, alias_id: str, usage_bytes: int) -> None:
        """Note a mailbox's size (sessions call this; the MX reads it for quota checks).

        Only that field is written: a session closing while the password changes must not put the
        credential it read before the change back."""
        self._set_usage(alias_id, usage_bytes)

    def set_alias_totp(self, alias_id: str, sealed: bytes | None) -> None:
        """Store (or with None, remove) the alias's sealed TOTP secret, and nothing else of its
        credential; ``NotFound`` when the alias has no credential."""
        if not self._set_totp(alias_id, sealed):
            raise NotFound(f"alias {alias_id} has no password")

    def set_scram_verifiers(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        """Store the alias's SCRAM verifiers alone, only while its Argon2id verifier is still
        ``password_hash`` (verifiers made from a password that changed meanwhile must not land).
        True when written."""
        return self._set_scram(alias_id, password_hash, verifiers)

    def remove_credential(self, alias_id: str) -> None:
        self._delete_credential(alias_id)

    # ---- mailbox homes (the store component) ----------------------------------------------------
    def set_mailbox_home(self, mailbox_id: str, host: str) -> MailboxHome:
        """Record that ``host``'s store serves the mailbox (again: the mailbox moved there)."""
        if not mailbox_id or not host.strip():
            raise InvalidInput("a mailbox home needs a mailbox id and a host name")
        home = MailboxHome(mailbox_id, host.strip(), now())
        self._put_mailbox_home(home)
        return home

    def get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None:
        return self._get_mailbox_home(mailbox_id)

    def list_mailbox_homes(self, host: str | None = None) -> list[MailboxHome]:
        """Every recorded home (of one host), by mailbox id."""
        return sorted(self._list_mailbox_homes(host), key=lambda h: h.mailbox_id)

    def remove_mailbox_home(self, mailbox_id: str) -> None:
        self._delete_mailbox_home(mailbox_id)

    # ---- Sieve scripts (the server reads them: the MX runs the active one while the user is away) ------
    def put_sieve_script(self, alias_id: str, name: str, content: str) -> SieveScript:
        """Create or replace a script (an existing one keeps its active flag). The text is not
        compiled here: ``services.sievescripts.save`` does that before calling this."""
        self.get_alias(alias_id)
        check_sieve_name(name)
        if len(content.encode("utf-8", "surrogatepass")) > MAX_SIEVE_SCRIPT_BYTES:
            raise ScriptTooLarge(f"a script may have at most {MAX_SIEVE_SCRIPT_BYTES} bytes")
        existing = self._get_sieve_script(alias_id, name)
        if existing is None and len(self._list_sieve_scripts(alias_id)) >= MAX_SIEVE_SCRIPTS:
            raise TooManyScripts(f"an address may have at most {MAX_SIEVE_SCRIPTS} scripts")
        script = SieveScript(alias_id, name, content, active=existing is not None and existing.active)
        self._put_sieve_script(script)
        return script

    def get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None:
        return self._get_sieve_script(alias_id, name)

    def list_sieve_scripts(self, alias_id: str) -> list[SieveScript]:
        return sorted(self._list_sieve_scripts(alias_id), key=lambda s: s.name)

    def active_sieve_script(self, alias_id: str) -> SieveScript | None:
        """The alias's one active script (RFC 5804 §2.8), or None: what the MX runs at every delivery."""
        return self._get_active_sieve_script(alias_id)

    def activate_sieve_script(self, alias_id: str, name: str | None) -> None:
        """Make ``name`` the one active script (RFC 5804 §2.8); None leaves none active."""
        if not self._activate_sieve_script(alias_id, name):
            raise NotFound(f"there is no script named {name!r}")

    def rename_sieve_script(self, alias_id: str, old: str, new: str) -> SieveScript:
        check_sieve_name(new)
        script = self._get_sieve_script(alias_id, old)
        if script is None:
            raise NotFound(f"there is no script named {old!r}")
        if old != new and self._get_sieve_script(alias_id, new) is not None:
            raise AlreadyExists(f"a script named {new!r} exists already")
        if not self._rename_sieve_script(alias_id, old, new):
            raise NotFound(f"there is no script named {old!r}")
        return replace(script, name=new)

    def delete_sieve_script(self, alias_id: str, name: str) -> None:
        script = self._get_sieve_script(alias_id, name)
        if script is None:
            raise NotFound(f"there is no script named {name!r}")
        if script.active:
            raise ScriptActive("the active script cannot be deleted: make another one active, or none, first")
        self._delete_sieve_script(alias_id, name)

    # ---- DKIM keys (shared by every host of the deployment) ------------------------------------
    def keep_dkim_key(self, key: DkimKeyRecord) -> DkimKeyRecord:
        """Store the domain's key for its algorithm unless one is stored already; the stored one
        (the first, whoever made it) is returned, so racing hosts agree on one key."""
        if key.algorithm not in ("rsa", "ed25519") or not key.domain or "PRIVATE KEY" not in key.pem:
            raise InvalidInput("a DKIM key needs a domain, an algorithm (rsa, ed25519) and a PEM private key")
        self._insert_dkim_key(key)
        stored = self._get_dkim_key(key.domain, key.algorithm)
        assert stored is not None
        return stored

    def get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None:
        return self._get_dkim_key(domain, algorithm)

    def list_dkim_keys(self) -> list[DkimKeyRecord]:
        """Every stored key, by domain and algorithm."""
        return sorted(self._list_dkim_keys(), key=lambda k: (k.domain, k.algorithm))

    # ---- admin accounts -------------------------------------------------------------------------
    def add_admin(self, admin: AdminAccount) -> AdminAccount:
        self._insert_admin(admin)
        return admin

    def get_admin(self, admin_id: str) -> AdminAccount:
        admin = self._get_admin(admin_id)
        if admin is None:
            raise NotFound(f"admin account {admin_id} does not exist")
        return admin

    def find_admin(self, email: str) -> AdminAccount | None:
        return self._find_admin(email)

    def list_admins(self) -> list[AdminAccount]:
        return sorted(self._list_admins(), key=lambda a: a.email)

    def consume_recovery_code(self, admin_id: str, code_hash: str) -> int | None:
        """Remove ``code_hash`` from the account's unused recovery codes in one atomic step; the
        number of codes left when this call removed it, None when it was not there (never issued, or
        spent already — also by a request at the same moment: only one of them gets a number)."""
        return self._take_recovery_code(admin_id, code_hash)

    def update_admin(self, admin: AdminAccount) -> AdminAccount:
        if not self._replace_admin(admin):
            raise NotFound(f"admin account {admin.id} does not exist")
        return admin

    def remove_admin(self, admin_id: str) -> None:
        if not self._delete_admin(admin_id):
            raise NotFound(f"admin account {admin_id} does not exist")

    # ---- API tokens -----------------------------------------------------------------------------
    def add_token(self, token: ApiToken) -> ApiToken:
        self._insert_token(token)
        return token

    def get_token(self, token_id: str) -> ApiToken:
        token = self._get_token(token_id)
        if token is None:
            raise NotFound(f"API token {token_id} does not exist")
        return token

    def find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self._find_token_by_hash(token_hash)

    def list_tokens(self) -> list[ApiToken]:
        return sorted(self._list_tokens(), key=lambda t: (t.created_at, t.id))

    def list_alias_tokens(self, alias_id: str) -> list[ApiToken]:
        """The tokens a user made for their own alias, oldest first."""
        return [t for t in self.list_tokens() if t.alias_id == alias_id]

    def update_token(self, token: ApiToken) -> ApiToken:
        if not self._replace_token(token):
            raise NotFound(f"API token {token.id} does not exist")
        return token

    def revoke_token(self, token_id: str) -> ApiToken:
        token = self.get_token(token_id)
        if token.revoked_at is None:
            token = self.update_token(replace(token, revoked_at=now()))
        return token

    def _revoke_alias_tokens(self, alias_id: str) -> None:
        # Revoked, not deleted: the audit log's "token x (id)" entries keep naming a token that existed.
        moment = now()
        for token in self._list_tokens():
            if token.alias_id == alias_id and token.revoked_at is None:
                self._replace_token(replace(token, revoked_at=moment))

    # ---- delivery and error log -----------------------------------------------------------------
    def append_log(self, entry: LogEntry) -> LogEntry:
        self._insert_log(entry)
        return entry

    def append_logs(self, entries: list[LogEntry]) -> None:
        """Several entries at once, in one transaction where the backend has them (the log lines of
        messages delivered at the same moment: ``AppContext.log_event`` gathers them)."""
        if entries:
            self._insert_logs(entries)

    def query_logs(self, query: LogQuery) -> LogPage:
        """Newest first; ``next_cursor`` continues after the last entry returned."""
        if not 1 <= query.limit <= MAX_LOG_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_LOG_PAGE}")
        after = decode_cursor(query.cursor) if query.cursor else None
        found = self._query_logs(query, after, query.limit + 1)
        entries = found[: query.limit]
        more = len(found) > query.limit
        return LogPage(entries=entries, next_cursor=encode_cursor(entries[-1]) if more and entries else None)

    def count_logs(self, kind: LogKind, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
        """How many entries of ``kind`` each (UTC day, status) has in [since, until): the dashboard's chart."""
        if until < since:
            raise InvalidInput("until must not be before since")
        return self._count_logs(kind, since, until)

    # ---- spam statistics ------------------------------------------------------------------------
    def add_spam_counts(self, counts: list[SpamCounts]) -> None:
        """Add to each day's counters: atomic increments, so every MX host adds to the same numbers."""
        for day in counts:
            check_spam_counts(day)
        wanted = [day for day in counts if any(day.outcomes.values()) or any(day.symbols.values())]
        if wanted:
            self._add_spam_counts(wanted)

    def spam_counts(self, since: date, until: date) -> list[SpamCounts]:
        """The days in [since, until) that have numbers, oldest first."""
        if until < since:
            raise InvalidInput("until must not be before since")
        return sorted(self._spam_counts(since, until), key=lambda c: c.day)

    # ---- hooks each backend implements ------------------------------------------------------------
    # ---- DMARC aggregate and SMTP TLS reports (issue 23) -------------------------------------------
    def add_dmarc_report(self, report: DmarcReport) -> bool:
        """Keep a report; False (nothing stored) when one with its reporter and report id is kept
        already: reporters send again, and several report addresses may get the same report."""
        check_report(report)
        return self._insert_dmarc_report(report)

    def list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None = None, limit: int = MAX_REPORT_ROWS
    ) -> list[DmarcReport]:
        """Reports whose period begins in [since, until) (of ``domain``), newest first, at most ``limit``."""
        _check_window(since, until, limit)
        return self._list_dmarc_reports(since, until, domain, limit)

    def get_dmarc_report(self, report_id: str) -> DmarcReport:
        """By its own id (``DmarcReport.id``), not the reporter's."""
        found = self._get_dmarc_report(report_id)
        if found is None:
            raise NotFound(f"DMARC report {report_id} does not exist")
        return found

    def add_tls_report(self, report: TlsReport) -> bool:
        """As ``add_dmarc_report``, for an SMTP TLS report."""
        check_report(report)
        return self._insert_tls_report(report)

    def list_tls_reports(
        self, since: datetime, until: datetime, domain: str | None = None, limit: int = MAX_REPORT_ROWS
    ) -> list[TlsReport]:
        """Reports whose period begins in [since, until) (with a policy of ``domain``), newest first."""
        _check_window(since, until, limit)
        return self._list_tls_reports(since, until, domain, limit)

    def get_tls_report(self, report_id: str) -> TlsReport:
        found = self._get_tls_report(report_id)
        if found is None:
            raise NotFound(f"TLS report {report_id} does not exist")
        return found

    def remove_reports_before(self, moment: datetime) -> int:
        """Drop the reports of both kinds whose period ended before ``moment``; how many went."""
        return self._delete_reports_before(moment)

    @abstractmethod
    def _insert_domain(self, domain: Domain) -> None: ...
    @abstractmethod
    def _get_domain(self, name: str) -> Domain | None: ...
    @abstractmethod
    def _list_domains(self) -> list[Domain]: ...
    @abstractmethod
    def _delete_domain(self, name: str) -> None: ...
    @abstractmethod
    def _replace_domain(self, domain: Domain) -> bool:
        """Replace the settings of the domain named ``domain.name``; False when there is none."""

    @abstractmethod
    def _insert_alias(self, alias: Alias) -> None: ...
    @abstractmethod
    def _get_alias(self, alias_id: str) -> Alias | None: ...
    @abstractmethod
    def _find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None: ...
    @abstractmethod
    def _list_aliases(self, domain: str | None) -> list[Alias]: ...
    @abstractmethod
    def _replace_alias(self, alias: Alias) -> bool: ...
    @abstractmethod
    def _delete_alias(self, alias_id: str) -> bool: ...

    @abstractmethod
    def _put_credential(self, credential: AliasCredential) -> None: ...
    @abstractmethod
    def _get_credential(self, alias_id: str) -> AliasCredential | None: ...
    @abstractmethod
    def _delete_credential(self, alias_id: str) -> None: ...
    @abstractmethod
    def _claim_credential(self, credential: AliasCredential) -> bool: ...
    @abstractmethod
    def _set_usage(self, alias_id: str, usage_bytes: int) -> None:
        """Write the credential's ``usage_bytes`` alone (nothing when the alias has no credential)."""

    @abstractmethod
    def _set_scram(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        """Write the credential's ``scram`` alone where its ``password_hash`` matches."""

    @abstractmethod
    def _set_totp(self, alias_id: str, sealed: bytes | None) -> bool:
        """Write the credential's ``totp_secret`` alone; False when the alias has no credential."""

    @abstractmethod
    def _put_sieve_script(self, script: SieveScript) -> None:
        """Insert or replace the script of that alias and name."""

    @abstractmethod
    def _get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None: ...
    @abstractmethod
    def _list_sieve_scripts(self, alias_id: str) -> list[SieveScript]: ...
    @abstractmethod
    def _get_active_sieve_script(self, alias_id: str) -> SieveScript | None:
        """The alias's active script read alone, through the index that keeps at most one active."""

    @abstractmethod
    def _activate_sieve_script(self, alias_id: str, name: str | None) -> bool:
        """In one step: ``name`` active and every other script of the alias not; False (nothing
        changed) when ``name`` is not one of its scripts."""

    @abstractmethod
    def _rename_sieve_script(self, alias_id: str, old: str, new: str) -> bool: ...
    @abstractmethod
    def _delete_sieve_script(self, alias_id: str, name: str) -> None: ...
    @abstractmethod
    def _delete_sieve_scripts(self, alias_id: str) -> None: ...

    @abstractmethod
    def _insert_dkim_key(self, key: DkimKeyRecord) -> None:
        """Insert the key; do nothing when the domain has one for that algorithm."""

    @abstractmethod
    def _get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None: ...

    @abstractmethod
    def _list_dkim_keys(self) -> list[DkimKeyRecord]: ...

    @abstractmethod
    def _put_mailbox_home(self, home: MailboxHome) -> None: ...

    @abstractmethod
    def _get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None: ...

    @abstractmethod
    def _list_mailbox_homes(self, host: str | None) -> list[MailboxHome]: ...

    @abstractmethod
    def _delete_mailbox_home(self, mailbox_id: str) -> None: ...

    @abstractmethod
    def _insert_admin(self, admin: AdminAccount) -> None: ...
    @abstractmethod
    def _get_admin(self, admin_id: str) -> AdminAccount | None: ...
    @abstractmethod
    def _find_admin(self, email: str) -> AdminAccount | None: ...
    @abstractmethod
    def _list_admins(self) -> list[AdminAccount]: ...
    @abstractmethod
    def _replace_admin(self, admin: AdminAccount) -> bool: ...
    @abstractmethod
    def _delete_admin(self, admin_id: str) -> bool: ...
    @abstractmethod
    def _take_recovery_code(self, admin_id: str, code_hash: str) -> int | None: ...

    @abstractmethod
    def _insert_token(self, token: ApiToken) -> None: ...
    @abstractmethod
    def _get_token(self, token_id: str) -> ApiToken | None: ...
    @abstractmethod
    def _find_token_by_hash(self, token_hash: str) -> ApiToken | None: ...
    @abstractmethod
    def _list_tokens(self) -> list[ApiToken]: ...
    @abstractmethod
    def _replace_token(self, token: ApiToken) -> bool: ...

    @abstractmethod
    def _insert_log(self, entry: LogEntry) -> None: ...

    def _insert_logs(self, entries: list[LogEntry]) -> None:
        for entry in entries:
            self._insert_log(entry)

    @abstractmethod
    def _query_logs(self, query: LogQuery, after: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
        """Entries matching ``query`` ordered by (time, id) descending, strictly after ``after``."""

    @abstractmethod
    def _count_logs(self, kind: LogKind, since: datetime, until: datetime) -> dict[tuple[date, str], int]: ...

    @abstractmethod
    def _add_spam_counts(self, counts: list[SpamCounts]) -> None:
        """Add each count to its (day, outcome or symbol) counter, creating it at 0 first."""

    @abstractmethod
    def _spam_counts(self, since: date, until: date) -> list[SpamCounts]: ...

    @abstractmethod
    def _insert_dmarc_report(self, report: DmarcReport) -> bool:
        """Insert the report; False, changing nothing, when (org_name, report_id) is stored already."""

    @abstractmethod
    def _list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None, limit: int
    ) -> list[DmarcReport]:
        """Ordered by begin, then id, descending."""

    @abstractmethod
    def _get_dmarc_report(self, report_id: str) -> DmarcReport | None: ...

    @abstractmethod
    def _insert_tls_report(self, report: TlsReport) -> bool: ...

    @abstractmethod
    def _list_tls_reports(self, since: datetime, until: datetime, domain: str | None, limit: int) -> list[TlsReport]:
        """Ordered by begin, then id, descending."""

    @abstractmethod
    def _get_tls_report(self, report_id: str) -> TlsReport | None: ...

    @abstractmethod
    def _delete_reports_before(self, moment: datetime) -> int: ...


def _check_window(since: datetime, until: datetime, limit: int) -> None:
    if until < since:
        raise InvalidInput("until must not be before since")
    if not 1 <= limit <= MAX_REPORT_ROWS:
        raise InvalidInput(f"limit must be between 1 and {MAX_REPORT_ROWS}")


def encode_cursor(entry: LogEntry) -> str:
    raw = f"{entry.time.isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_text, entry_id = raw.split("|", 1)
        return datetime.fromisoformat(time_text), entry_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None
