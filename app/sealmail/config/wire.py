"""Config-store calls over the store channel (``SEALMAIL_CONFIG_BACKEND=store``, ``config.remote``).

The front-ends use the data host's config store through its store component: calls on the store
itself (``session`` null, ``store.rpc``) named ``config.<method>``, where ``<method>`` is one of
``CONFIG_METHODS``: exactly the public methods of ``ConfigStore``, nothing else (no hook, no
backend's own method). Their arguments and results are the config records, which this module
teaches the channel's codec (importing it is enough, on both ends); they hold password hashes and
wrapped keys, never a password or an unwrapped key, and neither end logs them.
"""

from __future__ import annotations

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
    LogPage,
    LogQuery,
    MailboxHome,
    SieveScript,
    SpamCounts,
    TlsFailure,
    TlsPolicy,
    TlsReport,
)
from sealmail.errors import (
    AlreadyExists,
    ConfigStoreError,
    SchemaTooNew,
    ScriptActive,
    ScriptQuotaExceeded,
    ScriptTooLarge,
    TooManyScripts,
)
from sealmail.store import rpc

CONFIG_PREFIX = "config."
# ``tests/store/test_config_channel.py`` checks this is every public method of ``ConfigStore``.
CONFIG_METHODS = frozenset(
    {
        "schema_version",
        # domains
        "add_domain",
        "find_domain",
        "get_domain",
        "list_domains",
        "update_domain",
        "remove_domain",
        # aliases
        "add_alias",
        "get_alias",
        "find_alias",
        "list_aliases",
        "list_pattern_aliases",
        "update_alias",
        "remove_alias",
        # alias credentials (password hashes and wrapped keys only)
        "set_credential",
        "get_credential",
        "claim_mailbox",
        "record_usage",
        "set_alias_totp",
        "set_scram_verifiers",
        "remove_credential",
        # mailbox homes
        "set_mailbox_home",
        "get_mailbox_home",
        "list_mailbox_homes",
        "remove_mailbox_home",
        # Sieve scripts
        "put_sieve_script",
        "get_sieve_script",
        "list_sieve_scripts",
        "active_sieve_script",
        "activate_sieve_script",
        "rename_sieve_script",
        "delete_sieve_script",
        # DKIM keys
        "keep_dkim_key",
        "get_dkim_key",
        "list_dkim_keys",
        # admin accounts
        "add_admin",
        "get_admin",
        "find_admin",
        "list_admins",
        "consume_recovery_code",
        "update_admin",
        "remove_admin",
        # API tokens
        "add_token",
        "get_token",
        "find_token_by_hash",
        "list_tokens",
        "list_alias_tokens",
        "update_token",
        "revoke_token",
        # delivery, error and audit log
        "append_log",
        "append_logs",
        "query_logs",
        "count_logs",
        # spam statistics
        "add_spam_counts",
        "spam_counts",
        # DMARC and TLS reports
        "add_dmarc_report",
        "list_dmarc_reports",
        "get_dmarc_report",
        "add_tls_report",
        "list_tls_reports",
        "get_tls_report",
        "remove_reports_before",
    }
)

rpc.register(
    (
        Domain,
        Alias,
        AliasCredential,
        AdminAccount,
        ApiToken,
        LogEntry,
        LogQuery,
        LogPage,
        MailboxHome,
        SieveScript,
        DkimKeyRecord,
        SpamCounts,
        DmarcReport,
        DmarcRow,
        TlsReport,
        TlsPolicy,
        TlsFailure,
    ),
    (AlreadyExists, ConfigStoreError, SchemaTooNew, ScriptQuotaExceeded, TooManyScripts, ScriptTooLarge, ScriptActive),
)
