"""Domain operations shared by the CLI, the API and the web admin."""

from __future__ import annotations

from sealmail.addresses import normalize_domain
from sealmail.config.base import ConfigStore
from sealmail.config.models import Domain


def add_domain(store: ConfigStore, name: str) -> Domain:
    """Host a domain. ``universitéxyz.fr`` and ``xn--universitxyz-jeb.fr`` name the same one."""
    parsed = normalize_domain(name)
    return store.add_domain(Domain(name=parsed.ascii, unicode_name=parsed.unicode))


def get_domain(store: ConfigStore, name: str) -> Domain:
    return store.get_domain(normalize_domain(name).ascii)


def list_domains(store: ConfigStore) -> list[Domain]:
    return store.list_domains()


def remove_domain(store: ConfigStore, name: str) -> None:
    """Stop hosting a domain; its aliases and their credentials go with it."""
    store.remove_domain(normalize_domain(name).ascii)
