"""The data host's config store, reached over the store channel (``SEALMAIL_CONFIG_BACKEND=store``).

Several hosts share one config store without MongoDB: the data host's store component
(``sealmail serve store``) serves its own config store (normally the embedded SQLite file) to the
front-ends over the same mutual-TLS WebSocket as the mailboxes (``store_url``, ``store_ca_file``,
``store_client_cert_file``). Calls are ``config.<method>`` requests of ``store.rpc`` for exactly
the public methods of ``ConfigStore`` (``wire.CONFIG_METHODS``); the invariants run on the data
host, so a compound change (removing a domain with its aliases) is one call.

* ``ConfigStore`` is synchronous (async callers use ``asyncio.to_thread``): one blocking WebSocket
  per process, dialled on first use and shared by every thread under a lock, one call at a time.
* A lost, refused or silent data host raises ``StoreUnavailable`` (IMAP ``NO [UNAVAILABLE]``, POP3
  ``-ERR [SYS/TEMP]``, HTTP 503; the MX answers RCPT for aliases it knows from ``smtp.lastknown``).
  The next call dials again. A request that could not be sent on a connection found closed is sent
  once more on a new one (it never reached the data host, so that cannot apply it twice).
* Arguments carry password hashes and wrapped keys, never a password or an unwrapped key; nothing
  here logs them.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_blocking

from sealmail.addresses import AliasKind
from sealmail.config import wire
from sealmail.config.base import ConfigStore
from sealmail.config.models import (
    MAX_REPORT_ROWS,
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
)
from sealmail.store import rpc
from sealmail.store.errors import StoreUnavailable
from sealmail.store.remote import SilentBackoff, client_tls

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.config.remote")
R = TypeVar("R")
_LOST = (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError)


def _one(cls: type[R], value: Any) -> R:
    if not isinstance(value, cls):
        raise rpc.CodecError(f"the data host answered {type(value).__name__}, not {cls.__name__}")
    return value


def _maybe(cls: type[R], value: Any) -> R | None:
    return None if value is None else _one(cls, value)


def _many(cls: type[R], value: Any) -> list[R]:
    return [_one(cls, item) for item in _one(list, value)]


class RemoteConfigStore(ConfigStore):
    """``ConfigStore`` whose every public method is one call on the data host's config store."""

    def __init__(self, url: str, tls: ssl.SSLContext, *, timeout: float = 30.0) -> None:
        self.url = url
        self.tls = tls
        self.timeout = timeout
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # A silent data host (a dial or a reply timed out): calls fail at once until then, instead
        # of each caller waiting its own timeout behind the lock; doubles up to 30 s.
        self._quiet = SilentBackoff()

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteConfigStore:
        if settings.store_url is None:
            raise ValueError("SEALMAIL_CONFIG_BACKEND=store needs SEALMAIL_STORE_URL (the data host's store component)")
        assert settings.store_ca_file is not None  # Settings require them with store_url
        assert settings.store_client_cert_file is not None
        assert settings.store_client_key_file is not None
        tls = client_tls(settings.store_ca_file, settings.store_client_cert_file, settings.store_client_key_file)
        return cls(settings.store_url, tls, timeout=settings.store_timeout)

    # ---- the channel --------------------------------------------------------------------------------
    def _dial(self) -> ClientConnection:
        wait = self._quiet.remaining()
        if wait > 0:
            raise StoreUnavailable(f"the config store on the data host did not answer; trying it again in {wait:.0f} s")
        try:
            ws = connect_blocking(
                self.url,
                ssl=self.tls,
                proxy=None,
                max_size=rpc.MAX_FRAME,
                compression=None,
                open_timeout=self.timeout,
                close_timeout=2,
                legacy=True,
            )
        except _LOST as exc:
            if isinstance(exc, TimeoutError):
                self._quiet.silent()
            raise StoreUnavailable(
                f"the config store on the data host cannot be reached ({type(exc).__name__})"
            ) from exc
        self._quiet.answered()
        log.info("connected to the config store on the data host")
        return ws

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:
                log.debug("closing a lost config store connection failed", exc_info=True)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One ``config.<method>`` request and its decoded reply (its error raised as itself)."""
        call_id = next(self._ids)
        frame = rpc.request(call_id, None, wire.CONFIG_PREFIX + method, args, kwargs)
        with self._lock:
            reused = self._ws is not None
            ws = self._ws or self._dial()
            self._ws = ws
            try:
                ws.send(frame)
            except ConnectionClosed:
                self._drop()
                if not reused:
                    raise StoreUnavailable("the connection to the config store was lost") from None
                ws = self._ws = self._dial()  # the old one was closed before this request left: send it again
                try:
                    ws.send(frame)
                except _LOST as exc:
                    self._drop()
                    raise StoreUnavailable("the connection to the config store was lost") from exc
            except _LOST as exc:
                self._drop()
                raise StoreUnavailable("the connection to the config store was lost") from exc
            try:
                reply = rpc.loads(ws.recv(timeout=self.timeout))
            except TimeoutError as exc:
                self._quiet.silent()
                self._drop()  # a late reply must not answer the next request
                raise StoreUnavailable("the config store did not answer in time") from exc
            except (*_LOST, rpc.CodecError) as exc:
                self._drop()
                raise StoreUnavailable("the connection to the config store was lost") from exc
        if reply.get("id") != call_id:
            with self._lock:
                self._drop()
            raise StoreUnavailable("the config store answered another request")
        if "error" in reply:
            raise rpc.error_of(reply["error"])
        return reply.get("ok")

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ---- ConfigStore: every public method, one call each ------------------------------------------
    def schema_version(self) -> int:
        return _one(int, self._call("schema_version"))

    def add_domain(self, domain: Domain) -> Domain:
        return _one(Domain, self._call("add_domain", domain))

    def find_domain(self, name: str) -> Domain | None:
        return _maybe(Domain, self._call("find_domain", name))

    def get_domain(self, name: str) -> Domain:
        return _one(Domain, self._call("get_domain", name))

    def list_domains(self) -> list[Domain]:
        return _many(Domain, self._call("list_domains"))

    def update_domain(self, domain: Domain) -> Domain:
        return _one(Domain, self._call("update_domain", domain))

    def remove_domain(self, name: str) -> None:
        self._call("remove_domain", name)

    def add_alias(self, alias: Alias) -> Alias:
        return _one(Alias, self._call("add_alias", alias))

    def get_alias(self, alias_id: str) -> Alias:
        return _one(Alias, self._call("get_alias", alias_id))

    def find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None:
        return _maybe(Alias, self._call("find_alias", domain, kind, name))

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return _many(Alias, self._call("list_aliases", domain))

    def list_pattern_aliases(self, domain: str) -> list[Alias]:
        return _many(Alias, self._call("list_pattern_aliases", domain))

    def update_alias(self, alias: Alias) -> Alias:
        return _one(Alias, self._call("update_alias", alias))

    def remove_alias(self, alias_id: str) -> None:
        self._call("remove_alias", alias_id)

    def set_credential(self, credential: AliasCredential) -> None:
        self._call("set_credential", credential)

    def get_credential(self, alias_id: str) -> AliasCredential | None:
        return _maybe(AliasCredential, self._call("get_credential", alias_id))

    def claim_mailbox(self, credential: AliasCredential) -> bool:
        return _one(bool, self._call("claim_mailbox", credential))

    def record_usage(self, alias_id: str, usage_bytes: int) -> None:
        self._call("record_usage", alias_id, usage_bytes)

    def remove_credential(self, alias_id: str) -> None:
        self._call("remove_credential", alias_id)

    def set_alias_totp(self, alias_id: str, sealed: bytes | None) -> None:
        self._call("set_alias_totp", alias_id, sealed)

    def set_scram_verifiers(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        return _one(bool, self._call("set_scram_verifiers", alias_id, password_hash, verifiers))

    def put_sieve_script(self, alias_id: str, name: str, content: str) -> SieveScript:
        return _one(SieveScript, self._call("put_sieve_script", alias_id, name, content))

    def get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None:
        return _maybe(SieveScript, self._call("get_sieve_script", alias_id, name))

    def list_sieve_scripts(self, alias_id: str) -> list[SieveScript]:
        return _many(SieveScript, self._call("list_sieve_scripts", alias_id))

    def active_sieve_script(self, alias_id: str) -> SieveScript | None:
        return _maybe(SieveScript, self._call("active_sieve_script", alias_id))

    def activate_sieve_script(self, alias_id: str, name: str | None) -> None:
        self._call("activate_sieve_script", alias_id, name)

    def rename_sieve_script(self, alias_id: str, old: str, new: str) -> SieveScript:
        return _one(SieveScript, self._call("rename_sieve_script", alias_id, old, new))

    def delete_sieve_script(self, alias_id: str, name: str) -> None:
        self._call("delete_sieve_script", alias_id, name)

    def set_mailbox_home(self, mailbox_id: str, host: str) -> MailboxHome:
        return _one(MailboxHome, self._call("set_mailbox_home", mailbox_id, host))

    def get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None:
        return _maybe(MailboxHome, self._call("get_mailbox_home", mailbox_id))

    def list_mailbox_homes(self, host: str | None = None) -> list[MailboxHome]:
        return _many(MailboxHome, self._call("list_mailbox_homes", host))

    def remove_mailbox_home(self, mailbox_id: str) -> None:
        self._call("remove_mailbox_home", mailbox_id)

    def keep_dkim_key(self, key: DkimKeyRecord) -> DkimKeyRecord:
        return _one(DkimKeyRecord, self._call("keep_dkim_key", key))

    def get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None:
        return _maybe(DkimKeyRecord, self._call("get_dkim_key", domain, algorithm))

    def list_dkim_keys(self) -> list[DkimKeyRecord]:
        return _many(DkimKeyRecord, self._call("list_dkim_keys"))

    def add_admin(self, admin: AdminAccount) -> AdminAccount:
        return _one(AdminAccount, self._call("add_admin", admin))

    def get_admin(self, admin_id: str) -> AdminAccount:
        return _one(AdminAccount, self._call("get_admin", admin_id))

    def find_admin(self, email: str) -> AdminAccount | None:
        return _maybe(AdminAccount, self._call("find_admin", email))

    def list_admins(self) -> list[AdminAccount]:
        return _many(AdminAccount, self._call("list_admins"))

    def consume_recovery_code(self, admin_id: str, code_hash: str) -> int | None:
        return _maybe(int, self._call("consume_recovery_code", admin_id, code_hash))

    def update_admin(self, admin: AdminAccount) -> AdminAccount:
        return _one(AdminAccount, self._call("update_admin", admin))

    def remove_admin(self, admin_id: str) -> None:
        self._call("remove_admin", admin_id)

    def add_token(self, token: ApiToken) -> ApiToken:
        return _one(ApiToken, self._call("add_token", token))

    def get_token(self, token_id: str) -> ApiToken:
        return _one(ApiToken, self._call("get_token", token_id))

    def find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return _maybe(ApiToken, self._call("find_token_by_hash", token_hash))

    def list_tokens(self) -> list[ApiToken]:
        return _many(ApiToken, self._call("list_tokens"))

    def list_alias_tokens(self, alias_id: str) -> list[ApiToken]:
        return _many(ApiToken, self._call("list_alias_tokens", alias_id))

    def update_token(self, token: ApiToken) -> ApiToken:
        return _one(ApiToken, self._call("update_token", token))

    def revoke_token(self, token_id: str) -> ApiToken:
        return _one(ApiToken, self._call("revoke_token", token_id))

    def append_log(self, entry: LogEntry) -> LogEntry:
        return _one(LogEntry, self._call("append_log", entry))

    def append_logs(self, entries: list[LogEntry]) -> None:
        if entries:
            self._call("append_logs", entries)

    def query_logs(self, query: LogQuery) -> LogPage:
        return _one(LogPage, self._call("query_logs", query))

    def count_logs(self, kind: LogKind, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
        counts = _one(dict, self._call("count_logs", kind, since, until))
        out: dict[tuple[date, str], int] = {}
        for key, count in counts.items():
            day, status = _one(tuple, key)
            out[(_one(date, day), _one(str, status))] = _one(int, count)
        return out

    def add_spam_counts(self, counts: list[SpamCounts]) -> None:
        self._call("add_spam_counts", counts)

    def spam_counts(self, since: date, until: date) -> list[SpamCounts]:
        return _many(SpamCounts, self._call("spam_counts", since, until))

    def add_dmarc_report(self, report: DmarcReport) -> bool:
        return _one(bool, self._call("add_dmarc_report", report))

    def list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None = None, limit: int = MAX_REPORT_ROWS
    ) -> list[DmarcReport]:
        return _many(DmarcReport, self._call("list_dmarc_reports", since, until, domain, limit))

    def get_dmarc_report(self, report_id: str) -> DmarcReport:
        return _one(DmarcReport, self._call("get_dmarc_report", report_id))

    def add_tls_report(self, report: TlsReport) -> bool:
        return _one(bool, self._call("add_tls_report", report))

    def list_tls_reports(
        self, since: datetime, until: datetime, domain: str | None = None, limit: int = MAX_REPORT_ROWS
    ) -> list[TlsReport]:
        return _many(TlsReport, self._call("list_tls_reports", since, until, domain, limit))

    def get_tls_report(self, report_id: str) -> TlsReport:
        return _one(TlsReport, self._call("get_tls_report", report_id))

    def remove_reports_before(self, moment: datetime) -> int:
        return _one(int, self._call("remove_reports_before", moment))

    # ---- the backend hooks: the data host runs them, never this client --------------------------------
    def _insert_domain(self, domain: Domain) -> None:
        _not_here()

    def _get_domain(self, name: str) -> Domain | None:
        _not_here()

    def _list_domains(self) -> list[Domain]:
        _not_here()

    def _delete_domain(self, name: str) -> None:
        _not_here()

    def _replace_domain(self, domain: Domain) -> bool:
        _not_here()

    def _insert_alias(self, alias: Alias) -> None:
        _not_here()

    def _get_alias(self, alias_id: str) -> Alias | None:
        _not_here()

    def _find_alias(self, domain: str, kind: AliasKind, name: str) -> Alias | None:
        _not_here()

    def _list_aliases(self, domain: str | None) -> list[Alias]:
        _not_here()

    def _replace_alias(self, alias: Alias) -> bool:
        _not_here()

    def _delete_alias(self, alias_id: str) -> bool:
        _not_here()

    def _put_credential(self, credential: AliasCredential) -> None:
        _not_here()

    def _get_credential(self, alias_id: str) -> AliasCredential | None:
        _not_here()

    def _delete_credential(self, alias_id: str) -> None:
        _not_here()

    def _set_usage(self, alias_id: str, usage_bytes: int) -> None:
        _not_here()

    def _set_totp(self, alias_id: str, sealed: bytes | None) -> bool:
        _not_here()

    def _set_scram(self, alias_id: str, password_hash: str, verifiers: str | None) -> bool:
        _not_here()

    def _claim_credential(self, credential: AliasCredential) -> bool:
        _not_here()

    def _insert_dkim_key(self, key: DkimKeyRecord) -> None:
        _not_here()

    def _get_dkim_key(self, domain: str, algorithm: str) -> DkimKeyRecord | None:
        _not_here()

    def _list_dkim_keys(self) -> list[DkimKeyRecord]:
        _not_here()

    def _put_sieve_script(self, script: SieveScript) -> None:
        _not_here()

    def _get_sieve_script(self, alias_id: str, name: str) -> SieveScript | None:
        _not_here()

    def _list_sieve_scripts(self, alias_id: str) -> list[SieveScript]:
        _not_here()

    def _get_active_sieve_script(self, alias_id: str) -> SieveScript | None:
        _not_here()

    def _activate_sieve_script(self, alias_id: str, name: str | None) -> bool:
        _not_here()

    def _rename_sieve_script(self, alias_id: str, old: str, new: str) -> bool:
        _not_here()

    def _delete_sieve_script(self, alias_id: str, name: str) -> None:
        _not_here()

    def _delete_sieve_scripts(self, alias_id: str) -> None:
        _not_here()

    def _put_mailbox_home(self, home: MailboxHome) -> None:
        _not_here()

    def _get_mailbox_home(self, mailbox_id: str) -> MailboxHome | None:
        _not_here()

    def _list_mailbox_homes(self, host: str | None) -> list[MailboxHome]:
        _not_here()

    def _delete_mailbox_home(self, mailbox_id: str) -> None:
        _not_here()

    def _insert_admin(self, admin: AdminAccount) -> None:
        _not_here()

    def _get_admin(self, admin_id: str) -> AdminAccount | None:
        _not_here()

    def _find_admin(self, email: str) -> AdminAccount | None:
        _not_here()

    def _list_admins(self) -> list[AdminAccount]:
        _not_here()

    def _replace_admin(self, admin: AdminAccount) -> bool:
        _not_here()

    def _delete_admin(self, admin_id: str) -> bool:
        _not_here()

    def _take_recovery_code(self, admin_id: str, code_hash: str) -> int | None:
        _not_here()

    def _insert_token(self, token: ApiToken) -> None:
        _not_here()

    def _get_token(self, token_id: str) -> ApiToken | None:
        _not_here()

    def _find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        _not_here()

    def _list_tokens(self) -> list[ApiToken]:
        _not_here()

    def _replace_token(self, token: ApiToken) -> bool:
        _not_here()

    def _insert_log(self, entry: LogEntry) -> None:
        _not_here()

    def _query_logs(self, query: LogQuery, after: tuple[datetime, str] | None, limit: int) -> list[LogEntry]:
        _not_here()

    def _count_logs(self, kind: LogKind, since: datetime, until: datetime) -> dict[tuple[date, str], int]:
        _not_here()

    def _add_spam_counts(self, counts: list[SpamCounts]) -> None:
        _not_here()

    def _spam_counts(self, since: date, until: date) -> list[SpamCounts]:
        _not_here()

    def _insert_dmarc_report(self, report: DmarcReport) -> bool:
        _not_here()

    def _list_dmarc_reports(
        self, since: datetime, until: datetime, domain: str | None, limit: int
    ) -> list[DmarcReport]:
        _not_here()

    def _get_dmarc_report(self, report_id: str) -> DmarcReport | None:
        _not_here()

    def _insert_tls_report(self, report: TlsReport) -> bool:
        _not_here()

    def _list_tls_reports(self, since: datetime, until: datetime, domain: str | None, limit: int) -> list[TlsReport]:
        _not_here()

    def _get_tls_report(self, report_id: str) -> TlsReport | None:
        _not_here()

    def _delete_reports_before(self, moment: datetime) -> int:
        _not_here()


def _not_here() -> NoReturn:
    raise NotImplementedError("the data host's config store runs the backend hooks; the public methods call it")
