"""Alias operations shared by the CLI, the API and the web admin."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlsplit

from sealmail.addresses import is_webhook, parse_alias_address, parse_mailbox
from sealmail.config.base import ConfigStore
from sealmail.config.models import Alias, DisabledReply
from sealmail.errors import InvalidInput, NotFound
from sealmail.net.egress import url_problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sealmail.settings import Settings

MAX_RECIPIENTS = 100
DISABLED_REPLIES: tuple[str, ...] = get_args(DisabledReply)

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1048576`` -> bytes (binary units, as mail clients show quotas)."""
    match = _SIZE.match(text)
    if not match:
        raise InvalidInput(f"invalid size {text!r}: use a number of bytes or e.g. 500M, 2G")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


def parse_quota(value: int | str | None) -> int | None:
    """A quota as the API and the web admin take it: bytes, or text such as ``2G``; None: the default."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput("quota must be a number of bytes or text such as 2G")
    if isinstance(value, int):
        if value < 0:
            raise InvalidInput("quota cannot be negative")
        return value
    return parse_size(value)


def normalize_recipient(text: str, *, allow_private_webhooks: bool = False) -> str:
    """A forwarding address (its domain in ASCII form, ready for SMTP; its local part's case kept) or a webhook URL.

    Webhooks must be ``https://`` to a public host (see ``sealmail.net.egress``) unless the
    ``webhook_allow_private`` setting is on (``allow_private_webhooks``).
    """
    text = text.strip()
    if is_webhook(text):
        parts = urlsplit(text)
        if not parts.hostname:
            raise InvalidInput(f"webhook {text!r}: the URL has no host")
        if any(ch.isspace() for ch in text):
            raise InvalidInput(f"webhook {text!r}: the URL contains white space")
        problem = url_problem(text, allow_private=allow_private_webhooks)
        if problem is not None:
            raise InvalidInput(f"webhook {text!r}: {problem} (setting webhook_allow_private lifts this)")
        return text
    if "://" in text:
        raise InvalidInput(f"recipient {text!r}: only http:// and https:// webhooks are supported")
    return parse_mailbox(text, fold_case=False).ascii_domain_text


def _check_reply(reply: str) -> DisabledReply:
    if reply not in DISABLED_REPLIES:
        raise InvalidInput(f"disabled reply must be one of {', '.join(DISABLED_REPLIES)}, not {reply!r}")
    return reply  # type: ignore[return-value]


def _check_quota(quota: int | None) -> int | None:
    if quota is not None and quota < 0:
        raise InvalidInput("quota cannot be negative")
    return quota


def _check_recipients(recipients: Iterable[str], allow_private_webhooks: bool) -> list[str]:
    normalized: list[str] = []
    for text in recipients:
        value = normalize_recipient(text, allow_private_webhooks=allow_private_webhooks)
        if value not in normalized:
            normalized.append(value)
    if len(normalized) > MAX_RECIPIENTS:
        raise InvalidInput(f"an alias can have at most {MAX_RECIPIENTS} recipients")
    return normalized


def add_alias(
    store: ConfigStore,
    address: str,
    *,
    recipients: Iterable[str] = (),
    storage: bool | None = None,
    enabled: bool = True,
    disabled_reply: str = "reject",
    quota: int | None = None,
    description: str = "",
    allow_private_webhooks: bool = False,
) -> Alias:
    """Create ``user@domain``, ``*@domain`` (catch-all) or ``/regex/@domain``.

    Without recipients the alias gets a mailbox (``storage``) unless told otherwise; an alias with
    neither recipients nor storage would swallow mail, so it is refused.
    """
    name = parse_alias_address(address)
    targets = _check_recipients(recipients, allow_private_webhooks)
    if storage is None:
        storage = not targets
    if not targets and not storage:
        raise InvalidInput(f"alias {name.text}: give it recipients or a mailbox (storage), or mail to it is lost")
    alias = Alias(
        domain=name.domain.ascii,
        kind=name.kind,
        name=name.name,
        recipients=targets,
        storage=storage,
        enabled=enabled,
        disabled_reply=_check_reply(disabled_reply),
        quota=_check_quota(quota),
        description=description.strip(),
    )
    return store.add_alias(alias)


def get_alias(store: ConfigStore, address: str) -> Alias:
    """The alias whose own name is ``address`` (not resolution: ``*@d`` finds the catch-all itself)."""
    name = parse_alias_address(address)
    alias = store.find_alias(name.domain.ascii, name.kind, name.name)
    if alias is None:
        raise NotFound(f"alias {name.text} does not exist")
    return alias


def list_aliases(store: ConfigStore, domain: str | None = None) -> list[Alias]:
    if domain is None:
        return store.list_aliases()
    from sealmail.services.domains import get_domain

    return store.list_aliases(get_domain(store, domain).name)


def update_alias(
    store: ConfigStore,
    address: str,
    *,
    recipients: Iterable[str] | None = None,
    storage: bool | None = None,
    enabled: bool | None = None,
    disabled_reply: str | None = None,
    quota: int | None = None,
    clear_quota: bool = False,
    description: str | None = None,
    sending_blocked: bool | None = None,
    allow_private_webhooks: bool = False,
    settings: Settings | None = None,
) -> Alias:
    """Change an alias. With ``settings``, disabling it or taking its mailbox away ends its sessions
    on every process (``services.revocation``); every caller that serves users passes them."""
    alias = get_alias(store, address)
    changes: dict[str, Any] = {}
    if recipients is not None:
        changes["recipients"] = _check_recipients(recipients, allow_private_webhooks)
    if storage is not None:
        changes["storage"] = storage
    if enabled is not None:
        changes["enabled"] = enabled
    if disabled_reply is not None:
        changes["disabled_reply"] = _check_reply(disabled_reply)
    if clear_quota:
        changes["quota"] = None
    elif quota is not None:
        changes["quota"] = _check_quota(quota)
    if description is not None:
        changes["description"] = description.strip()
    if sending_blocked is not None:
        changes["sending_blocked"] = sending_blocked
    updated = replace(alias, **changes)
    if not updated.recipients and not updated.storage:
        raise InvalidInput(f"alias {address}: give it recipients or a mailbox (storage), or mail to it is lost")
    saved = store.update_alias(updated)
    if settings is not None and ((alias.enabled and not saved.enabled) or (alias.storage and not saved.storage)):
        from sealmail.services import revocation

        revocation.announce(settings, alias.id, revocation.DISABLED if not saved.enabled else revocation.NO_MAILBOX)
    return saved


def remove_alias(store: ConfigStore, settings: Settings, address: str) -> None:
    """Remove an alias; its mailbox and spool files go with it (no one could open them again)."""
    alias = get_alias(store, address)
    credential = store.get_credential(alias.id)
    store.remove_alias(alias.id)
    from sealmail.services import revocation

    revocation.announce(settings, alias.id, revocation.REMOVED)
    if credential is not None and credential.mailbox_id:
        from sealmail.services import mailboxes

        mailboxes.delete(store, settings, credential.mailbox_id)


def search_aliases(store: ConfigStore, text: str = "", domain: str | None = None) -> list[Alias]:
    """Aliases whose address, recipients or description contain ``text`` (case-insensitive)."""
    needle = text.strip().casefold()
    found = list_aliases(store, domain or None)
    if not needle:
        return found
    names = {d.name: d.unicode_name for d in store.list_domains()}

    def haystack(alias: Alias) -> str:
        shown = f"{alias.name}@{names.get(alias.domain, alias.domain)} {alias.name}@{alias.domain}"
        return " ".join([shown, *alias.recipients, alias.description]).casefold()

    return [a for a in found if needle in haystack(a)]


def describe_alias(store: ConfigStore, alias: Alias) -> dict[str, Any]:
    """An alias as the CLI prints it in JSON (the API adds usage and quota to this)."""
    return {
        "address": alias_address(store, alias),
        "id": alias.id,
        "kind": alias.kind,
        "recipients": alias.recipients,
        "storage": alias.storage,
        "enabled": alias.enabled,
        "disabled_reply": alias.disabled_reply,
        "quota": alias.quota,
        "description": alias.description,
        "sending_blocked": alias.sending_blocked,
        "has_password": store.get_credential(alias.id) is not None,
        "created_at": alias.created_at,
        "updated_at": alias.updated_at,
    }


def own_address(alias: Alias) -> str:
    """An alias's own address, its domain in ASCII: what ``get_alias`` and the audit log take."""
    return f"{alias.name}@{alias.domain}"


def alias_address(store: ConfigStore, alias: Alias) -> str:
    """How an alias is shown: its name at the Unicode form of its domain."""
    domain = store.find_domain(alias.domain)
    return f"{alias.name}@{domain.unicode_name if domain else alias.domain}"
