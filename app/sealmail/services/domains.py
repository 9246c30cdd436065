"""Domain operations shared by the CLI, the API and the web admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from sealmail.addresses import normalize_domain
from sealmail.config.base import ConfigStore
from sealmail.config.models import Domain
from sealmail.errors import InvalidInput

if TYPE_CHECKING:
    from sealmail.settings import Settings


def add_domain(store: ConfigStore, name: str, settings: Settings | None = None) -> Domain:
    """Host a domain. ``universitéxyz.fr`` and ``xn--universitxyz-jeb.fr`` name the same one.

    With ``settings``, its DKIM keys are made too (the CLI, API and web always pass them).
    """
    parsed = normalize_domain(name)
    domain = store.add_domain(Domain(name=parsed.ascii, unicode_name=parsed.unicode))
    if settings is not None:
        from sealmail.services.dkim import ensure_keys

        ensure_keys(settings, domain.name, store)
    return domain


def get_domain(store: ConfigStore, name: str) -> Domain:
    return store.get_domain(normalize_domain(name).ascii)


def list_domains(store: ConfigStore) -> list[Domain]:
    return store.list_domains()


def remove_domain(store: ConfigStore, settings: Settings, name: str) -> None:
    """Stop hosting a domain; its aliases, their credentials and their mailboxes go with it."""
    ascii_name = normalize_domain(name).ascii
    mailbox_ids = [
        credential.mailbox_id
        for alias in store.list_aliases(ascii_name)
        if (credential := store.get_credential(alias.id)) is not None and credential.mailbox_id
    ]
    store.remove_domain(ascii_name)
    from sealmail.services import mailboxes

    for mailbox_id in mailbox_ids:
        mailboxes.delete(store, settings, mailbox_id)


SPAM_THRESHOLDS = ("reject", "defer", "junk")  # Domain.spam_<name>


def set_spam_thresholds(store: ConfigStore, name: str, changes: Mapping[str, float | None]) -> Domain:
    """Change the spam thresholds named in ``changes`` (``SPAM_THRESHOLDS``); None clears one, so
    rspamd's own action decides that band again. The others stay as they are."""
    unknown = set(changes) - set(SPAM_THRESHOLDS)
    if unknown:
        raise InvalidInput(f"unknown threshold(s): {', '.join(sorted(unknown))}; they are {', '.join(SPAM_THRESHOLDS)}")
    domain = get_domain(store, name)
    now = spam_thresholds(domain) | {
        key: None if value is None else _number(key, value) for key, value in changes.items()
    }
    return store.update_domain(
        replace(domain, spam_reject=now["reject"], spam_defer=now["defer"], spam_junk=now["junk"])
    )


def spam_thresholds(domain: Domain) -> dict[str, float | None]:
    return {key: getattr(domain, f"spam_{key}") for key in SPAM_THRESHOLDS}


def _number(key: str, value: object) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"the {key} threshold must be a number")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"the {key} threshold must be a number") from None
