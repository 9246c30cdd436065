"""The changes the web admin and the REST API both make, each followed by its audit entry.

A front end parses its request (a form, a JSON body), calls one of these in a worker thread and
renders what comes back; what is changed, and what the audit log says about it, is decided here
once. ``Actor`` (``services.eventlog``) says who asked, from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealmail.services import aliases, credentials, domains, eventlog, tokens
from sealmail.services.clientconfig import ClientSetting, client_settings

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sealmail.config.base import ConfigStore
    from sealmail.config.models import Alias, ApiToken, Domain
    from sealmail.services.eventlog import Actor
    from sealmail.settings import Settings


# ---- domains ---------------------------------------------------------------------------------------
def add_domain(store: ConfigStore, settings: Settings, actor: Actor, name: str) -> Domain:
    """Host a domain and make its DKIM keys."""
    domain = domains.add_domain(store, name, settings)
    eventlog.record(store, actor, "domain.add", domain=domain.name)
    return domain


def set_spam_thresholds(store: ConfigStore, actor: Actor, name: str, changes: Mapping[str, float | None]) -> Domain:
    """Change a domain's spam thresholds (None clears one: rspamd's action decides that band)."""
    domain = domains.set_spam_thresholds(store, name, changes)
    now = domains.spam_thresholds(domain)
    detail = ", ".join(f"{key}={'rspamd' if now[key] is None else f'{now[key]:g}'}" for key in sorted(changes))
    eventlog.record(store, actor, "domain.spam", domain=domain.name, detail=detail)
    return domain


def remove_domain(store: ConfigStore, settings: Settings, actor: Actor, domain: Domain) -> None:
    """Stop hosting a domain; its aliases and mailboxes go with it."""
    domains.remove_domain(store, settings, domain.name)
    eventlog.record(store, actor, "domain.remove", domain=domain.name)


# ---- aliases ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AliasFields:
    """An alias's settings as a request gives them; None leaves a setting as it is (or its default)."""

    recipients: list[str] | None = None
    storage: bool | None = None
    enabled: bool | None = None
    disabled_reply: str | None = None
    quota: int | None = None
    description: str | None = None


def create_alias(store: ConfigStore, settings: Settings, actor: Actor, address: str, fields: AliasFields) -> Alias:
    alias = aliases.add_alias(
        store,
        address,
        recipients=fields.recipients or (),
        storage=fields.storage,
        enabled=True if fields.enabled is None else fields.enabled,
        disabled_reply=fields.disabled_reply or "reject",
        quota=fields.quota,
        description=fields.description or "",
        allow_private_webhooks=settings.webhook_allow_private,
    )
    eventlog.record(store, actor, "alias.create", domain=alias.domain, address=aliases.own_address(alias))
    return alias


def update_alias(
    store: ConfigStore,
    settings: Settings,
    actor: Actor,
    alias: Alias,
    fields: AliasFields,
    *,
    clear_quota: bool,
    detail: str = "",
) -> Alias:
    """Change the fields given; ``clear_quota`` restores the server's default quota."""
    updated = aliases.update_alias(
        store,
        aliases.own_address(alias),
        recipients=fields.recipients,
        storage=fields.storage,
        enabled=fields.enabled,
        disabled_reply=fields.disabled_reply,
        quota=fields.quota,
        clear_quota=clear_quota,
        description=fields.description,
        allow_private_webhooks=settings.webhook_allow_private,
        settings=settings,
    )
    eventlog.record(
        store, actor, "alias.update", domain=updated.domain, address=aliases.own_address(updated), detail=detail
    )
    return updated


def set_sending(store: ConfigStore, actor: Actor, alias: Alias, blocked: bool) -> Alias:
    """Stop an alias sending through submission, or let it send again (``smtp.submission``)."""
    updated = aliases.update_alias(store, aliases.own_address(alias), sending_blocked=blocked)
    eventlog.record(
        store,
        actor,
        "alias.sending",
        domain=updated.domain,
        address=aliases.own_address(updated),
        detail="blocked" if blocked else "allowed",
    )
    return updated


def remove_alias(store: ConfigStore, settings: Settings, actor: Actor, alias: Alias) -> None:
    """Remove an alias with its mailbox."""
    aliases.remove_alias(store, settings, aliases.own_address(alias))
    eventlog.record(store, actor, "alias.remove", domain=alias.domain, address=aliases.own_address(alias))


@dataclass(frozen=True)
class NewPassword:
    """A generated password (shown once), the address to sign in with and the client settings."""

    address: str
    password: str
    client: list[ClientSetting]


def new_password(
    store: ConfigStore,
    settings: Settings,
    actor: Actor,
    alias: Alias,
    *,
    current_password: str | None,
    recovery_key: str | None,
    reset_mailbox: bool,
) -> NewPassword:
    """Generate an alias's password. A mailbox with keys keeps its mail only with the current
    password or the recovery key (else ``AuthenticationFailed``); ``reset_mailbox`` empties it instead.
    The sessions and the user's API tokens of the old password end (``credentials.set_password``)."""
    password = credentials.set_password(
        store,
        settings,
        aliases.own_address(alias),
        old_password=current_password,
        recovery_key=recovery_key,
        reset_mailbox=reset_mailbox,
        actor=actor,
    )
    shown = aliases.alias_address(store, alias)
    how = "reset mailbox" if reset_mailbox else "generated"
    eventlog.record(store, actor, "alias.password", domain=alias.domain, address=aliases.own_address(alias), detail=how)
    return NewPassword(shown, password, client_settings(settings, shown))


# ---- API tokens ------------------------------------------------------------------------------------
def create_token(
    store: ConfigStore, actor: Actor, name: str, scopes: Iterable[str], *, granted_by: ApiToken | None = None
) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once); ``granted_by``: see ``tokens.create_token``."""
    token, secret = tokens.create_token(store, name, scopes, granted_by=granted_by)
    eventlog.record(store, actor, "token.create", detail=f"{token.name} ({', '.join(token.scopes)})")
    return token, secret


def revoke_token(store: ConfigStore, actor: Actor, token_id: str) -> ApiToken:
    token = tokens.revoke_token(store, token_id)
    eventlog.record(store, actor, "token.revoke", detail=token.name)
    return token
