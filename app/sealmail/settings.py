"""The one typed settings object.

Read from the environment and an env file (``/etc/sealmail/sealmail.env`` in production), every
variable prefixed ``SEALMAIL_``. The names Forward Email's self-hosting users already know
(``DOMAIN``, ``EMAIL``, ``AUTH_BASIC_USERNAME``, ``AUTH_BASIC_PASSWORD``) are accepted as well.

A process builds it once (``load_settings``) and passes it down; nothing reads the environment
anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from sealmail.errors import InvalidInput

ENV_PREFIX = "SEALMAIL_"
DEFAULT_ENV_FILE = Path("/etc/sealmail/sealmail.env")

# Names users know from Forward Email's self-hosting guide, accepted beside the prefixed ones.
_COMPAT_NAMES = {
    "domain": "DOMAIN",
    "email": "EMAIL",
    "auth_basic_username": "AUTH_BASIC_USERNAME",
    "auth_basic_password": "AUTH_BASIC_PASSWORD",
}


# The single-address setting of earlier versions, read as SEALMAIL_BIND_ADDRESSES when that is absent.
_LEGACY_BIND_ADDRESS = ENV_PREFIX + "BIND_ADDRESS"


def _compat(field: str) -> AliasChoices:
    return AliasChoices(ENV_PREFIX + field.upper(), _COMPAT_NAMES[field])


Port = int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",  # an env file may hold other programs' variables; SEALMAIL_ typos are caught below
        populate_by_name=True,
        validate_default=True,
    )

    # -- identity -------------------------------------------------------------------------------
    domain: str | None = Field(
        None, validation_alias=_compat("domain"), description="the server's own domain (web admin, mail host names)"
    )
    email: str | None = Field(None, validation_alias=_compat("email"), description="address for certificate notices")
    hostname: str | None = Field(None, description="this host's mail name (EHLO, banners); default mail.<domain>")
    auth_basic_username: str | None = Field(None, validation_alias=_compat("auth_basic_username"))
    auth_basic_password: SecretStr | None = Field(None, validation_alias=_compat("auth_basic_password"))

    # -- storage --------------------------------------------------------------------------------
    data_dir: Path = Field(Path("/var/lib/sealmail"), description="mailboxes, config store, spools, dev CA")
    # store: the data host's config store through its store component (SEALMAIL_STORE_URL, issue 19)
    config_backend: Literal["sqlite", "mongodb", "store"] = "sqlite"
    mongodb_url: SecretStr | None = Field(None, description="mongodb:// or mongodb+srv:// URL (replica sets welcome)")
    mongodb_database: str = "sealmail"
    redis_url: SecretStr | None = Field(None, description="redis:// or unix:// URL of the shared Redis")

    # -- network --------------------------------------------------------------------------------
    # Every listener binds each of these (IPv4 and IPv6; `sealmail dev`: 127.0.0.1 and ::1).
    # SEALMAIL_BIND_ADDRESS (one address) is the old name, still read when the new one is absent.
    bind_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["0.0.0.0", "::"],  # noqa: S104 - a mail server serves the world
        validation_alias=AliasChoices(ENV_PREFIX + "BIND_ADDRESSES", _LEGACY_BIND_ADDRESS),
        description="IP addresses (or localhost) every listener binds, comma-separated; IPv6 ones are IPv6-only",
    )
    mx_port: Port = Field(25, ge=0, le=65535)
    submission_tls_port: Port = Field(465, ge=0, le=65535)
    submission_port: Port = Field(587, ge=0, le=65535)
    imaps_port: Port = Field(993, ge=0, le=65535)
    imap_port: Port = Field(143, ge=0, le=65535)
    pop3s_port: Port = Field(995, ge=0, le=65535)
    pop3_port: Port = Field(110, ge=0, le=65535)
    web_port: Port = Field(443, ge=0, le=65535)
    api_port: Port = Field(4000, ge=0, le=65535)
    caldav_port: Port = Field(5000, ge=0, le=65535)
    carddav_port: Port = Field(6000, ge=0, le=65535)
    store_port: Port = Field(3456, ge=0, le=65535)
    managesieve_port: Port = Field(4190, ge=0, le=65535)  # RFC 5804 §1.8
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    # -- store component: mailboxes on a data host (issue 19) -----------------------------------
    # Unset store_url: every component opens the mailbox files under data_dir itself (one host).
    # Set: the front-ends reach mailboxes only through `sealmail serve store` at that URL, over
    # mutual TLS: the store presents tls_cert_file and asks for a client certificate issued by
    # store_ca_file; the front-ends verify it with the same CA and present store_client_cert_file.
    store_url: str | None = Field(None, description="wss://host:port of the data host's store component")
    store_ca_file: Path | None = Field(None, description="the deployment CA for the store channel (both ends)")
    store_client_cert_file: Path | None = Field(None, description="this host's client certificate for the store")
    store_client_key_file: Path | None = Field(None, description="its key")
    store_timeout: float = Field(30.0, gt=0, le=600, description="seconds a store call may take before it fails")
    store_host: str | None = Field(None, description="this data host's name in the config store's mailbox homes")
    # -- several data hosts: routing each mailbox to its home (issue 19) ---------------------------
    # Unset: every mailbox is on the one data host at store_url (or under data_dir, one host).
    # Set on front-ends ("store1=wss://10.0.0.41:3456,store2=wss://10.0.0.42:3456"): each mailbox's
    # calls go to the data host its home record names (store.routing); the same store_ca_file and
    # client certificate serve every one. store_url stays required: that data host serves the config
    # store, the job queue, and the mailboxes that have no recorded home.
    store_urls: Annotated[dict[str, str] | None, NoDecode] = Field(
        None, description="data-host name=wss://host:port pairs, comma-separated (front-ends of several data hosts)"
    )
    # The deployment's placement (roles/sealmail writes it): which components run on this host, so
    # `sealmail status`, `sealmail drain` and `sealmail components --json` speak of those only.
    components: Annotated[list[str] | None, NoDecode] = Field(
        None, description="the components this host runs, comma-separated; unset: every available one"
    )

    # -- passwords ------------------------------------------------------------------------------
    # Argon2id cost: t=3, 32 MiB, one lane takes ~80 ms on one core of the reference VPS.
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(32768, ge=8192, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(1, ge=1, le=16)
    # Logins of IMAP, POP3, DAV and submission (sealmail.services.logins): derivations side by side
    # on this many threads (one per core by default), and a successful check remembered in memory.
    kdf_concurrency: int | None = Field(
        None, ge=1, le=256, description="password derivations run at once per process; default: one per CPU core"
    )
    auth_cache_seconds: float = Field(
        300.0,
        ge=0,
        le=86400,
        description=(
            "how long a successful login is remembered in memory (never on disk) so the same password "
            "signs in again without a derivation; 0: off. A changed password misses at once"
        ),
    )

    # -- inbound SMTP (MX) ----------------------------------------------------------------------
    max_message_size: int = Field(50 * 1024**2, ge=1024, description="SIZE limit in octets (RFC 1870)")
    mx_max_recipients: int = Field(100, ge=1, description="RCPT TO per message (RFC 5321 §4.5.3.1.8)")
    mx_max_connections: int = Field(1000, ge=1)
    mx_max_connections_per_ip: int = Field(20, ge=1)
    mx_max_errors: int = Field(10, ge=1, description="error replies before the session is closed with 421")
    mx_command_limit: int = Field(100, ge=1, description="uses of any one command per session")
    mx_idle_timeout: float = Field(300.0, gt=0, description="seconds of silence before 421 (RFC 5321 §4.5.3.2.7)")
    mx_auth_workers: int | None = Field(
        None,
        ge=0,
        description=(
            "processes that check SPF/DKIM/DMARC/ARC for each MX session process; default: the CPU cores "
            "shared out among the MX session processes; 0: a thread of the MX"
        ),
    )
    mx_processes: int = Field(
        1,
        ge=1,
        le=256,
        description=(
            "MX session processes behind one listening socket (one Python process uses one core); "
            "more than 1: a parent accepts, enforces the connection limits and hands connections out"
        ),
    )

    # -- MX: one spool writer for the session processes (issue 19, the hot mailbox) --------------
    # With mx_processes > 1 and this above 0, the accepting process writes every spool: session
    # processes seal and hand it records up to this size, and it commits all that wait for a spool
    # in one fsync (sealmail.smtp.spoolwriter). Larger records, and all of them at 0 (the default),
    # each session process appends itself. Worth it where fsync is slow (bench/spool_writers.py).
    mx_spool_handoff_max: int = Field(
        0, ge=0, description="largest sealed record (octets) an MX session process hands to the spool writer; 0: none"
    )

    # -- MX: lookups reused for a few seconds (issue 19, several hosts) ------------------------------
    # Through the store channel (or MongoDB) each RCPT costs round trips to the data host: the
    # address's resolution, the mailbox's credential (its public key) and the size of its pending
    # spool. An answer younger than this is used again without asking, so a busy mailbox costs one
    # trip per message (the sealed record) instead of several; a change to an alias (disabled,
    # removed, quota) reaches the MX this many seconds later at most. None: 5 s where the config
    # store is elsewhere (store, mongodb), 0 with the embedded SQLite file (already a local read).
    mx_lookup_fresh_seconds: float | None = Field(
        None,
        ge=0,
        le=300,
        description="seconds the MX reuses an RCPT lookup; default 5 with a remote config store, else 0",
    )

    # -- MX: Sieve at delivery (issue 22; see sealmail.smtp.sieverun) -------------------------------
    # Each recipient's active script runs on two threads of the MX process's own, bounded by the
    # language core's work budget; past this many seconds (waiting for a thread included) the message
    # is kept as if there were no script, and the error is logged for the address.
    mx_sieve_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="seconds a recipient's Sieve script may take at delivery before the message is kept",
    )

    # -- SMTP DATA in memory (MX and submission) ------------------------------------------------
    # Each process holds the messages it is receiving in memory until they are stored; together they
    # stay under this (a message is held once, as the chunks it was read in). Past it, DATA gets
    # ``451 4.3.1`` and the sender retries later.
    mx_max_inflight_bytes: int = Field(
        256 * 1024**2, ge=0, description="DATA bytes one SMTP process holds at once; 0: no limit"
    )

    dmarc_failure_action: Literal["reject", "quarantine"] = "reject"
    authserv_id: str | None = Field(None, description="Authentication-Results authserv-id; default: the host name")

    # -- spam filtering with rspamd (issue 21) ----------------------------------------------------
    # Unset rspamd_url: no scanning. Set: the MX asks rspamd's normal worker (POST /checkv2) before
    # it answers DATA, beside the SPF/DKIM/DMARC checks; rspamd's action decides refuse, defer, Junk
    # or INBOX (sealmail.spam.policy). Submission asks it too, about what a signed-in user sends:
    # refuse, defer, or send flagged (sealmail.spam.outbound). The thresholds are rspamd's own (its
    # actions); per-domain thresholds are not settings yet.
    rspamd_url: str | None = Field(
        None, description="http://host:port of rspamd's normal worker (11333); unset: no spam scanning"
    )
    rspamd_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description=(
            "seconds the MX and submission wait for rspamd's answer before rspamd_unavailable applies "
            "(and IMAP's learner for the controller's)"
        ),
    )
    # Learning (IMAP moves into and out of Junk, sealmail.spam.learning) goes to the controller
    # worker, which asks for its password on every request (a deployed host keeps no password-free
    # "secure IP"); IMAP does it in the background (sealmail.services.spamlearning).
    rspamd_controller_url: str | None = Field(
        None, description="http://host:port of rspamd's controller worker (11334); unset: no learning"
    )
    rspamd_controller_password: SecretStr | None = Field(
        None, description="the controller's password (the rspamd role generates it)"
    )
    rspamd_unavailable: Literal["accept", "tempfail"] = Field(
        "accept",
        description=(
            "when rspamd does not answer: accept (logged, stored with X-Spam-Status: unchecked) "
            "or tempfail (451 4.7.1, the sender retries)"
        ),
    )

    # -- sending limits of submission (issue 21; see sealmail.services.sendlimits) -----------------
    # Per signed-in alias over a sliding hour, counted in the shared Redis so every submission host
    # counts together (without Redis: in each process's memory). Past a limit, MAIL FROM (messages)
    # or RCPT TO (recipients) gets 451 4.7.1 with the time the window has room again. 0: no limit.
    submission_max_messages_per_hour: int = Field(
        200, ge=0, description="messages one alias may submit in any hour; 0: no limit"
    )
    submission_max_recipients_per_hour: int = Field(
        1000, ge=0, description="recipients (all messages together) one alias may submit to in any hour; 0: no limit"
    )

    # -- DNS ------------------------------------------------------------------------------------
    dns_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="resolvers as host or host:port, comma-separated; default: the system's"
    )
    dns_timeout: float = Field(5.0, gt=0, description="seconds for one DNS question, retries included")

    # -- outbound delivery ----------------------------------------------------------------------
    smtp_relay_port: int = Field(25, ge=1, le=65535, description="port of remote MX hosts (tests use another)")
    smtp_timeout: float = Field(60.0, gt=0, description="seconds for each step of an outbound SMTP session")
    smtp_max_age: float = Field(5 * 24 * 3600.0, gt=0, description="seconds a message is retried before it bounces")
    smtp_retry_base: float = Field(300.0, gt=0, description="first retry delay in seconds; doubles per attempt")
    smtp_max_backoff: float = Field(4 * 3600.0, gt=0, description="longest wait between two attempts")
    smtp_ca_file: Path | None = Field(None, description="extra CA bundle for outbound TLS and MTA-STS (private CAs)")
    mta_sts_port: int = Field(443, ge=1, le=65535, description="HTTPS port MTA-STS policies are fetched from")
    # Which addresses outbound SMTP leaves from (``net.outbound``): receivers judge a sender by the
    # reputation of its address, and a fresh IPv6 range often has none (mail over IPv6 lands in spam
    # while IPv4 works): "ipv4" sends over IPv4 only. A host with several addresses of a family sends
    # from the one named here (its PTR must name SEALMAIL_HOSTNAME); none: the kernel's choice.
    outbound_ip_family: Literal["any", "ipv4", "ipv6"] = Field(
        "any", description="address family outbound SMTP connects over: any, ipv4 or ipv6"
    )
    outbound_source_ipv4: str | None = Field(None, description="local IPv4 address outbound SMTP connects from")
    outbound_source_ipv6: str | None = Field(None, description="local IPv6 address outbound SMTP connects from")

    # -- published DNS records (sealmail dns-records; the deployment passes its choices) ---------
    public_ipv4: str | None = Field(
        None, description="this host's public IPv4 address (A records); none: not published"
    )
    public_ipv6: str | None = Field(
        None, description="this host's public IPv6 address (AAAA records); none: not published"
    )
    mta_sts_mode: Literal["enforce", "testing", "none"] = Field(
        "enforce", description="MTA-STS policy mode (RFC 8461 §5): testing reports problems without refusing delivery"
    )
    dmarc_policy: Literal["none", "quarantine", "reject"] = Field(
        "quarantine", description="the p= of the published DMARC records (RFC 7489 §6.3)"
    )
    report_address: str | None = Field(
        None,
        description="where DMARC aggregate and TLS-RPT reports go (rua); default postmaster@<each hosted domain>",
    )
    # The MX reads the reports that reach those addresses (``smtp.reportintake``) and keeps them in
    # the config store: the web admin's Reports page and /v1/reports show them.
    report_max_bytes: int = Field(
        16 * 1024**2, ge=64 * 1024, description="largest report document taken, once unpacked (bytes)"
    )
    report_retention_days: int = Field(400, ge=1, description="days reports are kept after their period ends")

    # -- deliverability checks (sealmail doctor and the web admin's Deliverability page) ---------
    # Every DNS question and connection of the checks gets this long (they run side by side, so the
    # whole report takes a few times this at worst); the outbound port 25 check connects to the MX
    # hosts of these domains (smtp_relay_port), and "your provider blocks port 25" is said when
    # none answers while DNS does.
    doctor_timeout: float = Field(
        5.0, gt=0, le=60, description="seconds any one DNS question or connection of the deliverability checks may take"
    )
    # The daily run (``sealmail doctor --alert``, a systemd timer: ``sealmail timers``) logs each new
    # problem at priority err and mails them here: an address, or "none" to mail nobody; unset:
    # postmaster@<domain> (make an alias of that name to read it).
    doctor_alert_to: str | None = Field(
        None, description='where the daily check mails new problems; default postmaster@<domain>; "none": nobody'
    )
    doctor_port25_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["gmail.com", "outlook.com", "yahoo.com"],
        description="domains whose MX hosts the outbound port 25 check connects to, comma-separated; empty: no check",
    )

    # -- DKIM -----------------------------------------------------------------------------------
    dkim_dir: Path | None = Field(None, description="keys in <dir>/<domain>/{rsa,ed25519}.key; default <data>/dkim")
    dkim_selector_rsa: str = Field("rsa1", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
    dkim_selector_ed25519: str = Field("ed1", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")

    # -- queues and webhooks --------------------------------------------------------------------
    queue_key: SecretStr | None = Field(
        None, description="base64 32-byte key for queued copies; default <data>/queue.key"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC key for webhook signatures; default <data>/webhook.key"
    )
    srs_secret: SecretStr | None = Field(None, description="HMAC key for SRS addresses; default <data>/srs.key")
    webhook_ca_file: Path | None = Field(None, description="extra CA bundle for webhook receivers (private CAs)")
    webhook_max_age: float = Field(5 * 24 * 3600.0, gt=0, description="seconds a webhook is retried before giving up")

    # -- queue retention (finished jobs: see sealmail.queue.store.purge_finished) -----------------
    # A finished job's payload is zeroed at once; its row (envelope addresses, last error) is kept
    # this long for diagnostics, then deleted by the jobs component, which checks every interval.
    queue_finished_retention: float = Field(
        3 * 24 * 3600.0, ge=0, description="seconds a finished queue job (its addresses) is kept before deletion"
    )
    queue_purge_interval: float = Field(
        3600.0, gt=0, description="seconds between two purges of finished queue jobs by the jobs component"
    )

    # -- backups (sealmail backup ...) ------------------------------------------------------------
    backup_s3_endpoint: str | None = Field(None, description="S3 endpoint URL, e.g. https://s3.example.net")
    backup_s3_region: str = Field("us-east-1", description="S3 region name")
    backup_s3_bucket: str | None = Field(None, description="bucket the backups go to")
    backup_s3_access_key: str | None = Field(None, description="S3 access key id")
    backup_s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key")
    backup_prefix: str | None = Field(None, description="key prefix inside the bucket; default: the host name")
    backup_public_key: str | None = Field(
        None,
        description="operator backup public key (base64, from `sealmail backup init-key`): secrets are sealed to it",
    )
    backup_keep_daily: int = Field(7, ge=1, description="daily backups kept")
    backup_keep_weekly: int = Field(4, ge=0, description="weekly backups kept")
    backup_keep_monthly: int = Field(6, ge=0, description="monthly backups kept")
    # -- backup manifest authentication (see sealmail.backup.manifest) ---------------------------
    backup_manifest_key: SecretStr | None = Field(
        None,
        description="manifest MAC key (base64; `sealmail backup init-key` or `manifest-key` prints it): "
        "derived from the operator private key, so restore can tell the host's manifests from forged ones",
    )
    webhook_retry_base: float = Field(30.0, gt=0, description="first retry delay in seconds; doubles per attempt")
    webhook_timeout: float = Field(30.0, gt=0, description="seconds to wait for a receiver's answer")

    # -- webhook targets (egress policy, see sealmail/net/egress.py) -----------------------------
    # Off: webhooks go only to https:// hosts whose every address is public (no loopback, private,
    # link-local, unique-local, multicast...). On: for tests and private networks only.
    webhook_allow_private: bool = Field(
        False, description="allow http:// and private/loopback webhook targets (tests, private networks)"
    )

    # -- POP3 -----------------------------------------------------------------------------------
    pop3_delete_mode: Literal["remove", "trash"] = Field(
        "remove", description="what DELE does at QUIT: remove the message, or move it to Trash"
    )
    pop3_expire: int | Literal["never"] = Field(
        "never", description="EXPIRE (RFC 2449 §6.7): days read mail is kept after arrival, or never"
    )
    pop3_login_delay: int = Field(0, ge=0, le=86400, description="LOGIN-DELAY (RFC 2449 §6.5): seconds between logins")
    pop3_idle_timeout: float = Field(600.0, ge=600.0, description="autologout (RFC 1939 §3: at least 10 minutes)")
    pop3_max_connections: int = Field(5000, ge=1)
    pop3_max_connections_per_ip: int = Field(50, ge=1)

    # -- mailboxes ------------------------------------------------------------------------------
    default_quota: int = Field(10 * 1024**3, ge=0, description="bytes per mailbox unless the alias sets one")

    # -- IMAP -----------------------------------------------------------------------------------
    imap_append_limit: int = Field(
        50 * 1024**2, ge=1024, description="largest message APPEND accepts, in octets (APPENDLIMIT, RFC 7889)"
    )
    imap_login_timeout: float = Field(60.0, gt=0, description="seconds an unauthenticated connection may sit idle")
    imap_autologout: float = Field(
        1800.0, gt=0, description="seconds an authenticated connection may sit idle (RFC 9051 §5.4: 30 minutes)"
    )
    imap_write_deadline: float = Field(
        60.0, gt=0, description="seconds a response may wait for a client that stops reading before it is dropped"
    )
    imap_max_connections: int = Field(5000, ge=1, description="IMAP connections per process")
    imap_max_connections_per_ip: int = Field(50, ge=1, description="IMAP connections from one address")
    imap_plaintext_login: bool = Field(
        False, description="allow LOGIN without TLS (loopback benchmarks only; never in production)"
    )

    # -- ManageSieve (RFC 5804): users manage their Sieve scripts on managesieve_port --------------
    managesieve_login_timeout: float = Field(
        60.0, gt=0, description="seconds a ManageSieve connection may sit idle before it authenticates"
    )
    managesieve_autologout: float = Field(
        1800.0,
        ge=1800.0,
        description="seconds an authenticated connection may sit idle (RFC 5804 §1.2: at least 30 minutes)",
    )
    managesieve_max_connections: int = Field(1000, ge=1, description="ManageSieve connections per process")
    managesieve_max_connections_per_ip: int = Field(20, ge=1, description="ManageSieve connections from one address")
    managesieve_loopback_plaintext: bool = Field(
        False,
        description="allow AUTHENTICATE PLAIN without TLS from loopback peers (a webmail on this host); others must STARTTLS",
    )
    # SCRAM (RFC 5802) needs a verifier the server keeps: PBKDF2, far cheaper to guess against than
    # the Argon2id one if the config store is stolen (docs/threat-model.md). Off: PLAIN only.
    managesieve_scram: bool = Field(
        True,
        description=(
            "offer SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5804 §2.1) and keep SCRAM verifiers of each password; "
            "false removes none but makes no new ones"
        ),
    )
    scram_iterations: int = Field(
        100_000,
        ge=4096,
        le=10_000_000,
        description="PBKDF2 iterations of new SCRAM verifiers (RFC 7677: at least 4096)",
    )

    # -- calendars and contacts (DAV) -------------------------------------------------------------
    dav_max_item_size: int = Field(1024**2, ge=1024, description="octets of one event, task or vCard (larger: 413)")
    dav_max_request_size: int = Field(
        20 * 1024**2, ge=4096, description="octets of one request body, e.g. a whole calendar PUT (larger: 413)"
    )
    dav_max_collection_items: int = Field(100_000, ge=1, description="resources per calendar or address book (507)")
    dav_max_collections: int = Field(1000, ge=1, description="calendars and address books per alias (507)")
    dav_session_seconds: float = Field(
        300.0, gt=0, description="how long an unlocked DAV login is reused before the password is derived again"
    )
    dav_workers: int = Field(16, ge=1, le=256, description="threads serving DAV requests")
    dav_insecure_http: bool = Field(
        False, description="serve DAV without TLS, on a loopback bind address only (behind a local TLS proxy, tests)"
    )

    # -- web admin and API ----------------------------------------------------------------------
    web_session_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="a web admin session ends after this many idle seconds"
    )

    # -- plain HTTP (port 80): ACME HTTP-01 answers, everything else redirected to HTTPS ---------
    http_port: int = Field(
        80, ge=0, le=65535, description="plain-HTTP port of the web component (ACME HTTP-01, redirects); 0: off"
    )
    acme_webroot: Path | None = Field(
        None, description="certbot's webroot: <dir>/.well-known/acme-challenge/<token>; default <data>/acme"
    )

    # -- slow clients (slowloris): deadlines that trickled bytes do not push back -----------------
    # An HTTP request head (request line and header fields) must arrive whole within this, from
    # the connection's start or the end of the previous response (nginx: client_header_timeout).
    http_header_timeout: float = Field(
        60.0, gt=0, description="seconds an HTTP request head may take to arrive whole (web, API, DAV)"
    )
    # SMTP DATA must go on at this average rate once past the idle timeout (Postfix:
    # smtpd_min_data_rate): a client trickling a byte every few seconds is cut, a slow link is not.
    mx_min_data_rate: int = Field(
        500, ge=1, description="bytes/s DATA must average (past mx_idle_timeout) before 421 4.4.2"
    )

    # -- runtime --------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    dev_mode: bool = False

    # -- Redis eviction (issue 16; see sealmail.net.redispolicy) ------------------------------------
    # Components refuse to start when the shared Redis may evict keys at its memory cap (any policy
    # but noeviction): lockout counters and single-use TOTP markers carry an expiry and would go first.
    redis_allow_eviction: bool = Field(
        False, description="start even when Redis's maxmemory-policy may evict lockout and TOTP state"
    )

    # -- Redis Sentinel (issue 19; see sealmail.net.redisconn) ------------------------------------
    # With sentinels set, every Redis client asks them for the current master of
    # redis_sentinel_master instead of dialing redis_url's host: a master failover is followed by
    # itself. redis_url still gives the data nodes' password, database and TLS (rediss://); its host
    # and port are then not used (write e.g. redis://:PASSWORD@sentinel/0).
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="host:port of each Redis Sentinel (comma-separated); empty: no Sentinel"
    )
    redis_sentinel_master: str = Field("sealmail", description="the master's name the sentinels monitor")
    redis_sentinel_password: SecretStr | None = Field(None, description="the sentinels' own password (requirepass)")
    redis_sentinel_tls: bool = Field(False, description="talk TLS to the sentinels")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then the process environment, then the env file.
        return (init_settings, env_settings, dotenv_settings)

    @field_validator("components", mode="before")
    @classmethod
    def _split_components(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: list[str] | None) -> list[str] | None:
        from sealmail.components import ALL

        unknown = [name for name in value or [] if name not in ALL]
        if unknown:
            raise ValueError(f"unknown component(s) {', '.join(unknown)}; components are: {', '.join(ALL)}")
        return value

    @field_validator("store_urls", mode="before")
    @classmethod
    def _split_store_urls(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            name, sep, url = item.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise ValueError(f"{item!r} is not name=wss://host:port")
            if name.strip() in pairs:
                raise ValueError(f"data host {name.strip()!r} is named twice")
            pairs[name.strip()] = url.strip()
        return pairs or None

    @field_validator("store_urls")
    @classmethod
    def _store_urls_wss(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, url in (value or {}).items():
            if not url.startswith("wss://"):
                raise ValueError(f"the URL of data host {name!r} must start with wss://")
        return value or None

    @field_validator("dns_servers", "doctor_port25_domains", mode="before")
    @classmethod
    def _split_servers(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("bind_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("bind_addresses")
    @classmethod
    def _valid_addresses(cls, value: list[str]) -> list[str]:
        import ipaddress

        if not value:
            raise ValueError("name at least one address, e.g. 0.0.0.0,::")
        out = []
        for item in value:
            address = item.strip().removeprefix("[").removesuffix("]")
            if address.lower() == "localhost":
                address = "localhost"
            else:
                try:
                    address = str(ipaddress.ip_address(address))
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address (nor localhost)") from None
            if address not in out:
                out.append(address)
        return out

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("pop3_expire", mode="before")
    @classmethod
    def _expire_days(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value.lstrip("+-").isdigit():
                value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ValueError("must be a number of days (0 or more) or 'never'")
        return value

    @field_validator("domain", "hostname")
    @classmethod
    def _valid_domain(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        if info.field_name == "hostname" and value.lower() == "localhost":
            return "localhost"  # a development host's name
        from sealmail.addresses import normalize_domain

        return normalize_domain(value).ascii

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sealmail.addresses import parse_mailbox

        return parse_mailbox(value).text

    @field_validator("public_ipv4", "public_ipv6", "outbound_source_ipv4", "outbound_source_ipv6")
    @classmethod
    def _public_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        import ipaddress

        version = 4 if str(info.field_name).endswith("ipv4") else 6
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if address.version != version:
            raise ValueError(f"{value!r} is not an IPv{version} address")
        return str(address)

    @field_validator("doctor_alert_to")
    @classmethod
    def _valid_alert_address(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.strip().lower() == "none":
            return "none"
        from sealmail.addresses import parse_mailbox

        return parse_mailbox(value).text

    @field_validator("report_address")
    @classmethod
    def _valid_report_address(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sealmail.addresses import parse_mailbox

        return parse_mailbox(value).text

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("mongodb_url")
    @classmethod
    def _mongodb_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for item in value:
                host, _, port = str(item).rpartition(":")
                if not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise ValueError(f"{item!r} is not host:port")
        return value

    @field_validator("rspamd_url", "rspamd_controller_url")
    @classmethod
    def _rspamd_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// (rspamd's normal worker, e.g. http://127.0.0.1:11333)")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _store_consistent(self) -> Settings:
        if self.store_url is not None:
            if not self.store_url.startswith("wss://"):
                raise ValueError("SEALMAIL_STORE_URL must start with wss://")
            if self.store_ca_file is None or self.store_client_cert_file is None or self.store_client_key_file is None:
                raise ValueError(
                    "SEALMAIL_STORE_URL needs SEALMAIL_STORE_CA_FILE, SEALMAIL_STORE_CLIENT_CERT_FILE and "
                    "SEALMAIL_STORE_CLIENT_KEY_FILE"
                )
        if self.store_urls is not None and self.store_url is None:
            raise ValueError(
                "SEALMAIL_STORE_URLS needs SEALMAIL_STORE_URL too: the data host that serves the config store, "
                "the job queue and the mailboxes without a recorded home"
            )
        if self.config_backend == "store" and self.store_url is None:
            raise ValueError(
                "SEALMAIL_CONFIG_BACKEND=store reads the config store from the data host: it needs SEALMAIL_STORE_URL"
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.config_backend == "mongodb" and self.mongodb_url is None:
            raise ValueError("SEALMAIL_MONGODB_URL is required when SEALMAIL_CONFIG_BACKEND=mongodb")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("SEALMAIL_TLS_CERT_FILE and SEALMAIL_TLS_KEY_FILE must be set together")
        if self.redis_sentinels and self.redis_url is None:
            raise ValueError("SEALMAIL_REDIS_URL (password, database) is required with SEALMAIL_REDIS_SENTINELS")
        for family, source in (("ipv4", self.outbound_source_ipv4), ("ipv6", self.outbound_source_ipv6)):
            if source is not None and self.outbound_ip_family not in ("any", family):
                raise ValueError(
                    f"SEALMAIL_OUTBOUND_SOURCE_{family.upper()} is set, but SEALMAIL_OUTBOUND_IP_FAMILY="
                    f"{self.outbound_ip_family} never sends over {family[:2].upper()}{family[2:]}"
                )
        return self

    # -- derived paths --------------------------------------------------------------------------
    @property
    def mail_hostname(self) -> str:
        if self.hostname:
            return self.hostname
        if self.domain:
            return f"mail.{self.domain}"
        return "localhost"

    @property
    def auth_id(self) -> str:
        return self.authserv_id or self.mail_hostname

    @property
    def dkim_path(self) -> Path:
        return self.dkim_dir or self.data_dir / "dkim"

    @property
    def config_db_path(self) -> Path:
        return self.data_dir / "config.sqlite"

    @property
    def mx_lookup_fresh(self) -> float:
        """Seconds the MX reuses an RCPT lookup (``mx_lookup_fresh_seconds``, or its default)."""
        if self.mx_lookup_fresh_seconds is not None:
            return self.mx_lookup_fresh_seconds
        return 5.0 if self.config_backend != "sqlite" or self.store_url is not None else 0.0

    @property
    def acme_webroot_path(self) -> Path:
        return self.acme_webroot or self.data_dir / "acme"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"


def env_name(field: str) -> str:
    """The variable a user writes for ``field`` (the compat name where there is one)."""
    return _COMPAT_NAMES.get(field, ENV_PREFIX + field.upper())


def _unknown_prefixed(values: dict[str, str | None]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {
        ENV_PREFIX + "ENV_FILE",
        _LEGACY_BIND_ADDRESS,
    }
    return sorted(k for k in values if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def describe_errors(error: ValidationError) -> list[str]:
    """One clear line per invalid field, named as the user wrote it."""
    lines = []
    for item in error.errors():
        loc = item.get("loc") or ()
        # Aliased fields report their first alias (SEALMAIL_DOMAIN): map back to the field.
        name = str(loc[0]).lower().removeprefix(ENV_PREFIX.lower()) if loc else ""
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{env_name(name)}: {message}" if name in Settings.model_fields else message)
    return lines


def load_settings(env_file: Path | None = None, *, use_environ: bool = True, **overrides: Any) -> Settings:
    """Build the settings once for a process.

    ``env_file`` defaults to ``$SEALMAIL_ENV_FILE`` or ``/etc/sealmail/sealmail.env`` when that exists.
    With ``use_environ=False`` only the file counts (``check-config`` validates exactly the file).
    Raises ``InvalidInput`` whose message has one line per problem.
    """
    if env_file is None:
        from_env = os.environ.get(ENV_PREFIX + "ENV_FILE")
        if from_env:
            env_file = Path(from_env)
        elif DEFAULT_ENV_FILE.exists():
            env_file = DEFAULT_ENV_FILE
    problems: list[str] = []
    if env_file is not None:
        if not env_file.is_file():
            raise InvalidInput(f"env file {env_file}: not found")
        try:
            file_values = dotenv_values(env_file)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"env file {env_file}: cannot be read ({exc})") from exc
        problems += [f"{name}: unknown setting" for name in _unknown_prefixed(file_values)]
    try:
        if use_environ:
            settings = Settings(_env_file=env_file, **overrides)
        else:
            settings = _FileOnlySettings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        problems += describe_errors(exc)
        settings = None
    if problems:
        raise InvalidInput("\n".join(problems))
    assert settings is not None
    return settings


class _FileOnlySettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, dotenv_settings)


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds ``settings`` in a child process (``sealmail dev`` children)."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        env[ENV_PREFIX + name.upper()] = str(value)
    return env
