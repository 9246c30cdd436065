"""Which alias receives mail for an address (used at SMTP RCPT time, so it must be quick)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from sealmail.addresses import Mailbox, compile_alias_pattern, parse_mailbox
from sealmail.config.base import ConfigStore
from sealmail.config.models import Alias, Domain

Match = Literal["exact", "plus", "regex", "catchall"]


@dataclass(frozen=True, slots=True)
class Resolution:
    mailbox: Mailbox
    domain: Domain | None  # None: we do not host this domain (an SMTP server must refuse to relay)
    alias: Alias | None  # None: hosted domain, no such user
    match: Match | None = None

    @property
    def hosted(self) -> bool:
        return self.domain is not None


_compiled = functools.lru_cache(maxsize=4096)(compile_alias_pattern)


def resolve(store: ConfigStore, address: str) -> Resolution:
    """Resolve an address to its alias, most specific rule first.

    1. the exact local part (``user+tag`` can itself be an alias);
    2. plus-addressing: ``user+tag`` delivers to ``user``;
    3. regex aliases, oldest first, tried on the local part and on its base;
    4. the catch-all ``*``.
    A disabled alias still resolves: the caller answers with its disabled reply.
    Raises ``InvalidInput`` when the address is not syntactically valid.
    """
    mailbox = parse_mailbox(address)
    domain = store.find_domain(mailbox.domain.ascii)
    if domain is None:
        return Resolution(mailbox, None, None)
    alias = store.find_alias(domain.name, "exact", mailbox.local)
    if alias is not None:
        return Resolution(mailbox, domain, alias, "exact")
    base = mailbox.base_local
    if base != mailbox.local:
        alias = store.find_alias(domain.name, "exact", base)
        if alias is not None:
            return Resolution(mailbox, domain, alias, "plus")
    catchall = None
    for candidate in store.list_pattern_aliases(domain.name):
        if candidate.kind == "catchall":
            catchall = catchall or candidate
            continue
        pattern = _compiled(candidate.name)
        if pattern.search(mailbox.local) or (base != mailbox.local and pattern.search(base)):
            return Resolution(mailbox, domain, candidate, "regex")
    if catchall is not None:
        return Resolution(mailbox, domain, catchall, "catchall")
    return Resolution(mailbox, domain, None)
